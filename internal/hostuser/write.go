package hostuser

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/rootfs"
)

// ErrUnsafe means a file AddTo would read or replace is not a plain file
// (a symlink, a device, a directory): refused rather than followed.
var ErrUnsafe = errors.New("not a regular file; refusing to follow or replace it")

// maxFile bounds what AddTo reads of one account file.
const maxFile = 16 << 20

// accountFile is one file AddTo may edit.
type accountFile struct {
	name     string // in /etc
	required bool   // made (with root's entry) when missing; else skipped
	seed     string // a missing required file's first content
	edit     func([]byte, User) ([]byte, bool, error)
}

func accountFiles() []accountFile {
	return []accountFile{
		{"passwd", true, "root:x:0:0:root:/root:/bin/sh\n", editPasswd},
		{"group", true, "root:x:0:\n", editGroup},
		{"shadow", false, "", func(b []byte, u User) ([]byte, bool, error) { return editShadow(b, u.Name, 9) }},
		{"gshadow", false, "", func(b []byte, u User) ([]byte, bool, error) { return editShadow(b, u.Group, 4) }},
	}
}

// AddTo gives the container whose root filesystem is rootDir the user u:
// an entry in /etc/passwd and, unless its gid exists, /etc/group; locked
// entries in /etc/shadow and /etc/gshadow when the image has those files.
// Idempotent. A clash with the image's users (ErrClash) or a file that is
// not a plain file (ErrUnsafe) fails it before anything is written. It
// returns the container paths it changed.
//
// Every path is resolved inside rootDir (a symlink's target too), account
// files are opened without following a symlink, and each is replaced by a
// new file renamed over it within the open /etc, keeping its owner and
// mode: a process inside the running container can't redirect a write out
// of its root.
func AddTo(rootDir string, u User) ([]string, error) {
	if err := validUser(u); err != nil {
		return nil, fmt.Errorf("add host user to %s: %w", rootDir, err)
	}
	root, err := rootfs.OpenRoot(rootDir)
	if err != nil {
		return nil, fmt.Errorf("add host user %s: %w", u.Name, err)
	}
	defer unix.Close(root)
	etc, err := rootfs.OpenIn(root, "/etc", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("add host user %s to %s: /etc: %w", u.Name, rootDir, err)
	}
	defer unix.Close(etc)
	var etcSt unix.Stat_t
	if err := unix.Fstat(etc, &etcSt); err != nil {
		return nil, fmt.Errorf("add host user %s to %s: /etc: %w", u.Name, rootDir, err)
	}

	type pending struct {
		name string
		data []byte
		st   *unix.Stat_t // nil: a new file
	}
	var todo []pending
	for _, af := range accountFiles() {
		old, st, err := readAt(etc, af.name)
		if errors.Is(err, unix.ENOENT) {
			if !af.required {
				continue
			}
			old, st, err = []byte(af.seed), nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("add host user %s to %s: /etc/%s: %w", u.Name, rootDir, af.name, err)
		}
		data, changed, err := af.edit(old, u)
		if err != nil {
			return nil, fmt.Errorf("add host user %s to %s: %w", u.Name, rootDir, err)
		}
		if changed || st == nil {
			todo = append(todo, pending{af.name, data, st})
		}
	}
	var done []string
	for _, p := range todo {
		uid, gid, mode := etcSt.Uid, etcSt.Gid, uint32(0o644)
		if p.st != nil {
			uid, gid, mode = p.st.Uid, p.st.Gid, p.st.Mode&0o7777
		}
		if err := replaceAt(etc, p.name, p.data, uid, gid, mode); err != nil {
			return done, fmt.Errorf("add host user %s to %s: /etc/%s: %w", u.Name, rootDir, p.name, err)
		}
		done = append(done, "/etc/"+p.name)
	}
	return done, nil
}

// readAt reads dir/name, refusing anything but a regular file. The error
// is the bare errno for a missing file (errors.Is(err, unix.ENOENT)).
// The file is checked before it is opened for reading (an O_PATH
// descriptor, reopened through /proc/self/fd), so a device or a FIFO put
// there is never opened.
func readAt(dir int, name string) ([]byte, *unix.Stat_t, error) {
	pfd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, nil, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFLNK:
		return nil, nil, fmt.Errorf("a symlink: %w", ErrUnsafe)
	default:
		return nil, nil, ErrUnsafe
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", pfd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, nil, err
	}
	if len(b) > maxFile {
		return nil, nil, fmt.Errorf("larger than %d bytes", maxFile)
	}
	return b, &st, nil
}

// replaceAt writes data to a new file in dir, owned uid:gid with mode, and
// renames it over name: readers see the old file or the new one, never a
// part. A symlink or a directory at name is refused (renameat would
// replace a symlink, not follow it, but it is not ours to replace).
func replaceAt(dir int, name string, data []byte, uid, gid, mode uint32) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		return ErrUnsafe
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := "." + name + ".stint-" + hex.EncodeToString(rnd[:])
	fd, err := unix.Openat(dir, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), tmp)
	err = func() error {
		if _, err := f.Write(data); err != nil {
			return err
		}
		if err := unix.Fchown(fd, int(uid), int(gid)); err != nil {
			return err
		}
		if err := unix.Fchmod(fd, mode); err != nil {
			return err
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dir, tmp, dir, name)
	}
	if err != nil {
		_ = unix.Unlinkat(dir, tmp, 0)
	}
	return err
}

// MakeHome makes u's home directory in the container whose root filesystem
// is rootDir, owned by u (host ids: in a container with the hole map, u's
// ids are the same on both sides) with mode 0700, unless it exists. Parents
// it makes belong to the owner of the root directory (the container's
// root). It returns whether it made the home.
func MakeHome(rootDir string, u User) (bool, error) {
	if err := validUser(u); err != nil {
		return false, fmt.Errorf("home of host user in %s: %w", rootDir, err)
	}
	root, err := rootfs.OpenRoot(rootDir)
	if err != nil {
		return false, fmt.Errorf("home of %s: %w", u.Name, err)
	}
	defer unix.Close(root)
	var rootSt unix.Stat_t
	if err := unix.Fstat(root, &rootSt); err != nil {
		return false, fmt.Errorf("home of %s: %w", u.Name, err)
	}
	if fd, err := rootfs.OpenIn(root, u.Home, unix.O_PATH|unix.O_DIRECTORY, 0); err == nil {
		unix.Close(fd)
		return false, nil
	}
	made := false
	fd, err := rootfs.MkdirAllIn(root, u.Home, 0o755, func(fd int) error {
		made = true
		return unix.Fchown(fd, int(rootSt.Uid), int(rootSt.Gid))
	})
	if err != nil {
		return false, fmt.Errorf("home of %s in %s: %w", u.Name, rootDir, err)
	}
	defer unix.Close(fd)
	if !made {
		return false, nil
	}
	if err := unix.Fchown(fd, int(u.UID), int(u.GID)); err != nil {
		return false, fmt.Errorf("home of %s in %s: %w", u.Name, rootDir, err)
	}
	if err := unix.Fchmod(fd, 0o700); err != nil {
		return false, fmt.Errorf("home of %s in %s: %w", u.Name, rootDir, err)
	}
	return true, nil
}
