package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs backend's subvolume calls are the kernel's ioctls, not the
// `btrfs` tool: a job clones and destroys one subvolume each, and two execs
// of btrfs-progs were about a tenth of a trivial job's CPU. The numbers and
// layouts are the kernel's UAPI (include/uapi/linux/btrfs.h), which
// golang.org/x/sys/unix does not carry.
const (
	btrfsIoctlMagic = 0x94
	// btrfsPathNameMax is BTRFS_PATH_NAME_MAX: btrfs_ioctl_vol_args is
	// 4096 bytes.
	btrfsPathNameMax = 4087
	// btrfsSubvolNameMax is BTRFS_SUBVOL_NAME_MAX: btrfs_ioctl_vol_args_v2
	// is 4096 bytes.
	btrfsSubvolNameMax = 4039
	// btrfsSubvolRdonly is BTRFS_SUBVOL_RDONLY, a subvolume flag.
	btrfsSubvolRdonly = 1 << 1
)

// btrfsVolArgs is struct btrfs_ioctl_vol_args.
type btrfsVolArgs struct {
	fd   int64
	name [btrfsPathNameMax + 1]byte
}

// btrfsVolArgsV2 is struct btrfs_ioctl_vol_args_v2 (the unions as their
// largest members: unused[4], name).
type btrfsVolArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	unused  [4]uint64
	name    [btrfsSubvolNameMax + 1]byte
}

// ioc is the kernel's _IOC(dir, 0x94, nr, size).
func ioc(dir, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | btrfsIoctlMagic<<8 | nr
}

const iocWrite, iocRead = 1, 2

var (
	btrfsIocSubvolCreate   = ioc(iocWrite, 14, unsafe.Sizeof(btrfsVolArgs{}))   // BTRFS_IOC_SUBVOL_CREATE
	btrfsIocSnapDestroy    = ioc(iocWrite, 15, unsafe.Sizeof(btrfsVolArgs{}))   // BTRFS_IOC_SNAP_DESTROY
	btrfsIocSnapCreateV2   = ioc(iocWrite, 23, unsafe.Sizeof(btrfsVolArgsV2{})) // BTRFS_IOC_SNAP_CREATE_V2
	btrfsIocSubvolGetflags = ioc(iocRead, 25, unsafe.Sizeof(uint64(0)))         // BTRFS_IOC_SUBVOL_GETFLAGS
	btrfsIocSubvolSetflags = ioc(iocWrite, 26, unsafe.Sizeof(uint64(0)))        // BTRFS_IOC_SUBVOL_SETFLAGS
)

// ioctl calls ioctl(2) on fd, retrying on EINTR.
func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		if errno != unix.EINTR {
			if errno != 0 {
				return errno
			}
			return nil
		}
	}
}

// openDir opens directory path for an ioctl.
func openDir(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// setName copies name into a fixed-size, NUL-terminated name field.
func setName(dst []byte, name string) error {
	if len(name) >= len(dst) || name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid subvolume name %q", name)
	}
	copy(dst, name)
	return nil
}

// btrfsSubvolCreate makes path a new, empty subvolume (`btrfs subvolume
// create`).
func btrfsSubvolCreate(path string) error {
	var args btrfsVolArgs
	if err := setName(args.name[:], filepath.Base(path)); err != nil {
		return fmt.Errorf("create subvolume %s: %w", path, err)
	}
	return atParent(path, "create subvolume", btrfsIocSubvolCreate, unsafe.Pointer(&args))
}

// btrfsSnapshot makes dst a writable snapshot of subvolume src (`btrfs
// subvolume snapshot`): O(1), sharing every extent with src.
func btrfsSnapshot(src, dst string) error {
	sfd, err := openDir(src)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", src, err)
	}
	defer unix.Close(sfd)
	args := btrfsVolArgsV2{fd: int64(sfd)}
	if err := setName(args.name[:], filepath.Base(dst)); err != nil {
		return fmt.Errorf("snapshot %s to %s: %w", src, dst, err)
	}
	return atParent(dst, "snapshot "+src+" to", btrfsIocSnapCreateV2, unsafe.Pointer(&args))
}

// btrfsSubvolDelete deletes subvolume path (`btrfs subvolume delete`,
// without waiting for the commit: the cleaner frees its extents later),
// and first the subvolumes nested in it: a container may make one in its
// root (creating a subvolume needs no privilege), which would otherwise
// keep its clone forever (ENOTEMPTY).
func btrfsSubvolDelete(path string) error {
	err := btrfsDestroy(path)
	if !errors.Is(err, unix.ENOTEMPTY) {
		return err
	}
	nested, werr := nestedSubvolumes(path)
	if werr != nil {
		return errors.Join(err, werr)
	}
	for i := len(nested) - 1; i >= 0; i-- { // deepest first
		if err := btrfsDestroy(nested[i]); err != nil {
			return err
		}
	}
	return btrfsDestroy(path)
}

// nestedSubvolumes lists the subvolumes below subvolume path, parents
// before their children.
func nestedSubvolumes(path string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == path {
			return err
		}
		if sub, err := isSubvolume(p); err != nil || sub {
			if sub {
				out = append(out, p)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list subvolumes in %s: %w", path, err)
	}
	return out, nil
}

// btrfsDestroy deletes the subvolume at path, which holds no other.
func btrfsDestroy(path string) error {
	var args btrfsVolArgs
	if err := setName(args.name[:], filepath.Base(path)); err != nil {
		return fmt.Errorf("delete subvolume %s: %w", path, err)
	}
	return atParent(path, "delete subvolume", btrfsIocSnapDestroy, unsafe.Pointer(&args))
}

// atParent runs a name-taking ioctl on path's parent directory.
func atParent(path, what string, req uintptr, args unsafe.Pointer) error {
	fd, err := openDir(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	defer unix.Close(fd)
	if err := ioctl(fd, req, args); err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	return nil
}

// btrfsSetReadonly makes subvolume path read-only (`btrfs property set -ts
// PATH ro true`).
func btrfsSetReadonly(path string) error {
	fd, err := openDir(path)
	if err != nil {
		return fmt.Errorf("make subvolume %s read-only: %w", path, err)
	}
	defer unix.Close(fd)
	var flags uint64
	if err := ioctl(fd, btrfsIocSubvolGetflags, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("make subvolume %s read-only: %w", path, err)
	}
	flags |= btrfsSubvolRdonly
	if err := ioctl(fd, btrfsIocSubvolSetflags, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("make subvolume %s read-only: %w", path, err)
	}
	return nil
}
