package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/stintdev/stint/internal/sysexec"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/plural"
)

// UnpackOptions tune Unpack.
type UnpackOptions struct {
	// SkipDevices skips device nodes (unprivileged containers cannot use
	// them, and an unprivileged user cannot make them); one warning says so.
	SkipDevices bool
}

// Unpack extracts img's root filesystem into dir, which must exist and be
// empty. For a unified image the "rootfs/" prefix is stripped. Extraction is
// safe: nothing is written outside dir (see ExtractTar). It returns
// warnings about what was not reproduced (skipped devices, xattrs).
func (s *Store) Unpack(ctx context.Context, img *Image, dir string, opts UnpackOptions) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("unpack image %s: %w", img.Fingerprint, err)
	}
	if len(ents) > 0 {
		return nil, fmt.Errorf("unpack image %s: target %s is not empty", img.Fingerprint, dir)
	}
	src, prefix := img.Path(), "rootfs"
	if img.Split {
		src, prefix = img.RootfsPath(), ""
	}
	if img.Split && img.RootfsFormat == "squashfs" {
		if _, err := sysexec.Run(ctx, "unsquashfs", "-f", "-n", "-d", dir, src); err != nil {
			return nil, fmt.Errorf("unpack image %s: %w", img.Fingerprint, err)
		}
		return nil, nil
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("unpack image %s: %w", img.Fingerprint, err)
	}
	defer f.Close()
	r, _, err := decompress(f)
	if err != nil {
		return nil, fmt.Errorf("unpack image %s: %w", img.Fingerprint, err)
	}
	defer r.Close()
	warnings, err := ExtractTar(ctx, r, dir, prefix, opts)
	if err != nil {
		return warnings, fmt.Errorf("unpack image %s: %w", img.Fingerprint, err)
	}
	return warnings, nil
}

// ExtractTar extracts the entries of the tar stream r that lie under prefix
// ("" for all) into dir, without the prefix. It is the security boundary for
// image contents: an absolute name, a ".." component, a path through a
// symlink, or a hard link to a symlink is rejected with an error naming the
// entry, and every path is resolved with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS) from dir, so the kernel itself refuses to leave it.
func ExtractTar(ctx context.Context, r io.Reader, dir, prefix string, opts UnpackOptions) ([]string, error) {
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(root)
	x := &extractor{root: root, opts: opts, owner: os.Geteuid() == 0}
	rules := newTarRules(prefix)
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return x.warnings(), err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return x.warnings(), fmt.Errorf("read tar: %w", err)
		}
		// The rules refuse a hostile entry before anything is written;
		// RESOLVE_BENEATH below is the backstop.
		name, link, ok, err := rules.next(hdr)
		if err != nil {
			return x.warnings(), err
		}
		if !ok {
			continue // metadata.yaml, templates/
		}
		if name == "" {
			// The root itself: dir exists; take the entry's owner and mode
			// (a 0700 temporary directory would lock a container's users out).
			if hdr.Typeflag == tar.TypeDir {
				if err := x.rootDir(hdr); err != nil {
					return x.warnings(), fmt.Errorf("extract %q: %w", hdr.Name, err)
				}
			}
			continue
		}
		if err := x.entry(hdr, name, link, tr); err != nil {
			return x.warnings(), err
		}
	}
	x.dirTimes()
	return x.warnings(), nil
}

// dirTimes sets directory mtimes, last: creating their entries changed them.
func (x *extractor) dirTimes() {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		parent, base, err := x.parent(d.name, false)
		if err != nil {
			continue
		}
		_ = unix.UtimesNanoAt(parent, base, []unix.Timespec{unix.NsecToTimespec(d.hdr.ModTime.UnixNano()), unix.NsecToTimespec(d.hdr.ModTime.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW)
		unix.Close(parent)
	}
	x.dirs = nil
}

type extractor struct {
	root  int
	opts  UnpackOptions
	owner bool // root: chown to the tar's ids, make devices
	// replaceDirs: a non-directory entry replaces a directory with its
	// contents (image layers), not only an empty one (a single tarball).
	replaceDirs bool
	devices     int
	xattrFails  int
	dirs        []dirEntry
}

type dirEntry struct {
	name string
	hdr  *tar.Header
}

func (x *extractor) warnings() []string {
	var w []string
	if x.devices > 0 {
		w = append(w, "skipped "+plural.N(x.devices, "device node", "device nodes")+": not usable in an unprivileged container")
	}
	if x.xattrFails > 0 {
		w = append(w, "could not set "+plural.N(x.xattrFails, "extended attribute", "extended attributes"))
	}
	return w
}

const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// parent opens the directory holding name (beneath the root, through no
// symlink), creating missing directories when create, and returns it with
// name's last component.
func (x *extractor) parent(name string, create bool) (int, string, error) {
	dirPart, base := path.Split(name)
	fd, err := unix.Openat2(x.root, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath})
	if err != nil {
		return -1, "", err
	}
	for _, c := range strings.Split(strings.Trim(dirPart, "/"), "/") {
		if c == "" {
			continue
		}
		next, err := unix.Openat2(fd, c, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath})
		if errors.Is(err, unix.ENOENT) && create {
			if err := unix.Mkdirat(fd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, "", err
			}
			next, err = unix.Openat2(fd, c, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath})
		}
		unix.Close(fd)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
			return -1, "", &UnsafeEntryError{Entry: name, Reason: "path goes through a symlink"}
		}
		if errors.Is(err, unix.ENOTDIR) {
			return -1, "", &UnsafeEntryError{Entry: name, Reason: "a parent is not a directory"}
		}
		if err != nil {
			return -1, "", err
		}
		fd = next
	}
	return fd, base, nil
}

func (x *extractor) entry(hdr *tar.Header, name, link string, r io.Reader) error {
	parent, base, err := x.parent(name, true)
	if err == nil {
		defer unix.Close(parent)
		err = x.create(parent, base, name, link, hdr, r)
	}
	var ue *UnsafeEntryError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ue):
		ue.Entry = hdr.Name // the name the tarball wrote
		return ue
	}
	return fmt.Errorf("extract %q: %w", hdr.Name, err)
}

// linkErr explains why a hard link's target is refused.
func linkErr(link string, err error) error {
	var ue *UnsafeEntryError
	if errors.As(err, &ue) {
		return &UnsafeEntryError{Reason: fmt.Sprintf("hard link to %q: %s", link, ue.Reason)}
	}
	return fmt.Errorf("hard link to %q: %w", link, err)
}

// clear removes whatever is at base, unless it is a directory and the
// entry is one too (tar semantics: later entries replace earlier ones). A
// directory replaced by a non-directory must be empty, unless the
// extractor applies layers (replaceDirs), where it goes with its contents.
func (x *extractor) clear(parent int, base string, isDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		switch {
		case isDir:
			return nil
		case x.replaceDirs:
			return removeAllAt(parent, base)
		}
		return unix.Unlinkat(parent, base, unix.AT_REMOVEDIR)
	}
	return unix.Unlinkat(parent, base, 0)
}

// create makes the entry name (base in parent); link is a hard link's
// target, both already checked by tarRules.
func (x *extractor) create(parent int, base, name, link string, hdr *tar.Header, r io.Reader) error {
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := x.clear(parent, base, true); err != nil {
			return err
		}
		if err := unix.Mkdirat(parent, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		fd, err := unix.Openat2(parent, base, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath})
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		x.dirs = append(x.dirs, dirEntry{name, hdr})
		return x.finishFD(fd, hdr, mode)
	case tar.TypeReg:
		if err := x.clear(parent, base, false); err != nil {
			return err
		}
		fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		if _, err := io.Copy(f, r); err != nil {
			return err
		}
		if err := x.finishFD(fd, hdr, mode); err != nil {
			return err
		}
		return x.times(parent, base, hdr)
	case tar.TypeSymlink:
		if err := x.clear(parent, base, false); err != nil {
			return err
		}
		// The target is stored as is: it is never followed while extracting.
		if err := unix.Symlinkat(hdr.Linkname, parent, base); err != nil {
			return err
		}
		if x.owner {
			if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
		}
		return x.times(parent, base, hdr)
	case tar.TypeLink:
		tparent, tbase, err := x.parent(link, false)
		if err != nil {
			return linkErr(hdr.Linkname, err)
		}
		defer unix.Close(tparent)
		if err := x.clear(parent, base, false); err != nil {
			return err
		}
		return unix.Linkat(tparent, tbase, parent, base, 0)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		if kind != unix.S_IFIFO && (x.opts.SkipDevices || !x.owner) {
			x.devices++
			return nil
		}
		if err := x.clear(parent, base, false); err != nil {
			return err
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(parent, base, kind|mode, int(dev)); err != nil {
			return err
		}
		if x.owner {
			if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
		}
		if err := unix.Fchmodat(parent, base, mode, 0); err != nil {
			return err
		}
		return x.times(parent, base, hdr)
	case tar.TypeXGlobalHeader:
		return nil
	}
	return &UnsafeEntryError{Reason: fmt.Sprintf("unsupported entry type %q", string(hdr.Typeflag))}
}

// finishFD sets owner, then mode (chown clears setuid bits), then xattrs
// (chown clears file capabilities) on an open file or directory.
func (x *extractor) finishFD(fd int, hdr *tar.Header, mode uint32) error {
	if x.owner {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return err
	}
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if err := unix.Fsetxattr(fd, attr, []byte(v), 0); err != nil {
			x.xattrFails++
		}
	}
	return nil
}

func (x *extractor) rootDir(hdr *tar.Header) error {
	fd, err := unix.Openat2(x.root, ".", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	x.dirs = append(x.dirs, dirEntry{".", hdr})
	return x.finishFD(fd, hdr, uint32(hdr.Mode)&0o7777)
}

func (x *extractor) times(parent int, base string, hdr *tar.Header) error {
	ts := unix.NsecToTimespec(hdr.ModTime.UnixNano())
	return unix.UtimesNanoAt(parent, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}
