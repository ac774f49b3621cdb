package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/internal/rootfs"
)

// copier holds one Collect's open container root and its bookkeeping.
type copier struct {
	ctx        context.Context
	root       int // O_PATH fd of the container root
	res        *Result
	uid, gid   int
	chown      bool
	hostPrefix string     // the host directory being written, for messages
	max        int64      // cap on Result.Bytes; negative: none
	capped     bool       // the cap was reached: no more file data
	idmap      *idmap.Map // an unprivileged container's map; nil: privileged
}

func (c *copier) skip(p, reason string) {
	c.res.Skipped = append(c.res.Skipped, Skip{Path: p, Reason: reason})
}

// openInRoot opens a container path with every symlink resolved inside the
// root, as under chroot.
func (c *copier) openInRoot(p string, flags uint64) (int, error) {
	return rootfs.OpenIn(c.root, p, flags, 0)
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// errBadPattern reports a malformed glob; path.Match's own error says why.
var errBadPattern = path.ErrBadPattern

// glob expands an absolute, clean container pattern. Directories on the way
// are resolved inside the root; the last component is matched, not resolved.
func (c *copier) glob(pattern string) ([]string, error) {
	comps := strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	for _, comp := range comps {
		if _, err := path.Match(comp, ""); err != nil {
			return nil, errBadPattern
		}
	}
	paths := []string{"/"}
	for _, comp := range comps {
		var next []string
		for _, p := range paths {
			if !hasMeta(comp) {
				next = append(next, path.Join(p, comp)) // existence is checked on copy
				continue
			}
			names, err := c.readDirIn(p)
			var d deniedError
			if errors.As(err, &d) {
				c.skip(p, string(d))
			}
			if err != nil {
				continue // not a directory, gone or unreadable: no matches under it
			}
			for _, n := range names {
				if ok, _ := path.Match(comp, n); ok {
					next = append(next, path.Join(p, n))
				}
			}
		}
		paths = next
		if err := c.ctx.Err(); err != nil {
			return nil, err
		}
	}
	slices.Sort(paths)
	return slices.Compact(paths), nil
}

// deniedError is a directory the container could not list; it says why.
type deniedError string

func (e deniedError) Error() string { return string(e) }

// readDirIn lists the container directory p, if the container could.
func (c *copier) readDirIn(p string) ([]string, error) {
	if r := c.unsearchable(path.Dir(p)); r != "" {
		return nil, deniedError(r)
	}
	fd, err := c.openInRoot(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if r := c.denied(&st, 0o5); r != "" {
		return nil, deniedError("not readable by the container (" + r + ")")
	}
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

// copyMatch copies the container entry m into the host directory dstFd.
func (c *copier) copyMatch(m string, dstFd int, hostDir string) error {
	parent, base := path.Split(m)
	if r := c.unsearchable(parent); r != "" {
		c.skip(m, r)
		return nil
	}
	pfd, err := c.openInRoot(parent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		c.skip(m, "resolve "+parent+" inside the container: "+errText(err))
		return nil
	}
	defer unix.Close(pfd)
	c.hostPrefix = hostDir
	return c.copyEntry(pfd, base, m, dstFd, base, 0)
}

// denied says why an unprivileged container's root could not access an
// inode with st the way that needs the "other" permission bits in other
// (0o4: read a file, 0o5: list a directory, 0o1: search one), or "" if it
// could. In its user namespace root has CAP_DAC_OVERRIDE (and
// CAP_DAC_READ_SEARCH) only over inodes whose owner and group are both
// mapped; on any other inode (the host's files, through a bind mount or a
// sysfs or proc mount) only the "other" bits apply to it. With no map (a
// privileged job: its root is the host's) everything is allowed.
func (c *copier) denied(st *unix.Stat_t, other uint32) string {
	m := c.idmap
	if m == nil {
		return ""
	}
	uidOK := st.Uid >= m.HostUID && st.Uid-m.HostUID < m.Size
	gidOK := st.Gid >= m.HostGID && st.Gid-m.HostGID < m.Size
	if uidOK && gidOK || st.Mode&other == other {
		return ""
	}
	if !uidOK {
		return fmt.Sprintf("owner uid %d outside its id map", st.Uid)
	}
	return fmt.Sprintf("group gid %d outside its id map", st.Gid)
}

// unsearchable says which directory on the way to the container directory
// dir (dir included) the container could not search, and why; "" if none
// (or if one is missing or no directory: whoever opens it says so). Each
// prefix is resolved inside the root as the full path would be.
func (c *copier) unsearchable(dir string) string {
	if c.idmap == nil {
		return ""
	}
	p := "/"
	for _, comp := range append([]string{""}, strings.Split(strings.Trim(path.Clean("/"+dir), "/"), "/")...) {
		p = path.Join(p, comp)
		fd, err := c.openInRoot(p, unix.O_PATH)
		if err != nil {
			return ""
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return ""
		}
		if r := c.denied(&st, 0o1); r != "" {
			return fmt.Sprintf("%s is not searchable by the container (%s)", p, r)
		}
	}
	return ""
}

// errText is an errno's message without Go's wrapping.
func errText(err error) string {
	var en unix.Errno
	if errors.As(err, &en) {
		return en.Error()
	}
	return err.Error()
}

// copyEntry copies srcDir/name (never following it) to dstDir/name. rel is
// the path under the artifact's host directory. Only a host-side failure or
// cancellation is an error; anything odd in the container is a Skip.
func (c *copier) copyEntry(srcDir int, name, cpath string, dstDir int, rel string, depth int) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(srcDir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		c.skip(cpath, errText(err))
		return nil
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return c.copyLink(srcDir, name, cpath, dstDir, rel)
	case unix.S_IFREG:
		return c.copyFile(srcDir, name, cpath, dstDir, rel)
	case unix.S_IFDIR:
		return c.copyDir(srcDir, name, cpath, dstDir, rel, depth)
	case unix.S_IFCHR:
		c.skip(cpath, "character device: not copied")
	case unix.S_IFBLK:
		c.skip(cpath, "block device: not copied")
	case unix.S_IFIFO:
		c.skip(cpath, "fifo: not copied")
	case unix.S_IFSOCK:
		c.skip(cpath, "socket: not copied")
	default:
		c.skip(cpath, fmt.Sprintf("unknown file type %#o: not copied", st.Mode&unix.S_IFMT))
	}
	return nil
}

func (c *copier) copyLink(srcDir int, name, cpath string, dstDir int, rel string) error {
	target, err := readlinkat(srcDir, name)
	if err != nil {
		c.skip(cpath, "read symlink: "+errText(err))
		return nil
	}
	if ok, err := c.clear(dstDir, name, cpath, rel); !ok || err != nil {
		return err
	}
	if err := unix.Symlinkat(target, dstDir, name); err != nil {
		return c.hostErr(rel, err)
	}
	if c.chown {
		if err := unix.Fchownat(dstDir, name, c.uid, c.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return c.hostErr(rel, err)
		}
	}
	c.res.Copied = append(c.res.Copied, cpath)
	c.res.Links = append(c.res.Links, Link{Path: cpath, Target: target})
	return nil
}

func readlinkat(dir int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

func (c *copier) copyFile(srcDir int, name, cpath string, dstDir int, rel string) error {
	if c.capped {
		c.skip(cpath, c.capReason())
		return nil
	}
	// O_NOFOLLOW and O_NONBLOCK: if the entry was swapped for a link or a
	// fifo since the fstatat, fail or don't hang; fstat below re-checks.
	sfd, err := unix.Openat(srcDir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		c.skip(cpath, "open: "+errText(err))
		return nil
	}
	src := os.NewFile(uintptr(sfd), cpath)
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		c.skip(cpath, "changed while being copied: not copied")
		return nil
	}
	if r := c.denied(&st, 0o4); r != "" {
		c.skip(cpath, "not readable by the container ("+r+")")
		return nil
	}
	if ok, err := c.clear(dstDir, name, cpath, rel); !ok || err != nil {
		return err
	}
	dfd, err := unix.Openat(dstDir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return c.hostErr(rel, err)
	}
	dst := os.NewFile(uintptr(dfd), rel)
	n, err := c.copyData(sfd, src, dst, st.Size)
	if err == nil {
		err = c.finish(dfd, st.Mode)
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(dstDir, name, 0) // no half file left behind
		if errors.Is(err, errCap) {
			c.capped = true
			c.skip(cpath, c.capReason())
			return nil
		}
		if errors.Is(err, c.ctx.Err()) {
			return err
		}
		return c.hostErr(rel, err)
	}
	c.res.Copied = append(c.res.Copied, cpath)
	c.res.Bytes += n
	if c.res.Sizes == nil {
		c.res.Sizes = map[string]int64{}
	}
	c.res.Sizes[cpath] = n
	return nil
}

// errCap stops a copy that would cross the size cap.
var errCap = errors.New("artifact size cap reached")

func (c *copier) capReason() string {
	return fmt.Sprintf("the artifacts' size cap (%s of file data) is reached: not copied", humanize.IBytes(uint64(c.max)))
}

// copyData copies the first size bytes of src to dst, data only: holes
// (found with SEEK_DATA/SEEK_HOLE) stay holes, so a sparse file costs the
// host what it costs the container. It returns the data bytes copied, or
// errCap before copying data beyond the cap.
func (c *copier) copyData(sfd int, src, dst *os.File, size int64) (int64, error) {
	var n int64
	for off := int64(0); off < size; {
		data, err := unix.Seek(sfd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return n, err
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(sfd, data, unix.SEEK_HOLE)
		if err != nil {
			return n, err
		}
		hole = min(hole, size) // the file may have grown meanwhile
		if c.max >= 0 && c.res.Bytes+n+hole-data > c.max {
			return n, errCap
		}
		w, err := io.Copy(io.NewOffsetWriter(dst, data), ctxReader{c.ctx, io.NewSectionReader(src, data, hole-data)})
		n += w
		if err != nil {
			return n, err
		}
		off = hole
	}
	// The trailing hole, and the length.
	return n, dst.Truncate(size)
}

func (c *copier) copyDir(srcDir int, name, cpath string, dstDir int, rel string, depth int) error {
	if depth >= maxDepth {
		c.skip(cpath, fmt.Sprintf("deeper than %d directories: not copied", maxDepth))
		return nil
	}
	sfd, err := unix.Openat(srcDir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		c.skip(cpath, "open directory: "+errText(err))
		return nil
	}
	src := os.NewFile(uintptr(sfd), cpath)
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		c.skip(cpath, "stat directory: "+errText(err))
		return nil
	}
	if r := c.denied(&st, 0o5); r != "" {
		c.skip(cpath, "not readable by the container ("+r+")")
		return nil
	}
	names, err := src.Readdirnames(-1)
	if err != nil {
		c.skip(cpath, "read directory: "+errText(err))
		return nil
	}
	slices.Sort(names)
	dfd, err := c.mkdirAt(dstDir, name, 0o700)
	if errors.Is(err, errNotDir) {
		c.skip(cpath, fmt.Sprintf("%s exists on the host and is not a directory (not followed)", filepath.Join(c.hostPrefix, rel)))
		return nil
	}
	if err != nil {
		return c.hostErr(rel, err)
	}
	defer unix.Close(dfd)
	for _, n := range names {
		if err := c.copyEntry(sfd, n, path.Join(cpath, n), dfd, path.Join(rel, n), depth+1); err != nil {
			return err
		}
	}
	// Modes last, so a read-only directory could still be filled.
	if err := c.finish(dfd, st.Mode); err != nil {
		return c.hostErr(rel, err)
	}
	return nil
}

// finish sets the copied mode (minus setuid/setgid: the file now belongs to
// someone else) and the owner.
func (c *copier) finish(fd int, mode uint32) error {
	if err := unix.Fchmod(fd, mode&0o1777); err != nil {
		return err
	}
	if c.chown {
		return unix.Fchown(fd, c.uid, c.gid)
	}
	return nil
}

var errNotDir = errors.New("not a directory (symlinks are not followed)")

// mkdirAt makes (if needed) and opens the directory dir/name, refusing a
// symlink or a non-directory in its place.
func (c *copier) mkdirAt(dir int, name string, mode uint32) (int, error) {
	created := true
	if err := unix.Mkdirat(dir, name, mode); errors.Is(err, unix.EEXIST) {
		created = false
	} else if err != nil {
		return -1, fmt.Errorf("mkdir %s: %w", name, err)
	}
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return -1, fmt.Errorf("%s: %w", name, errNotDir)
	}
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", name, err)
	}
	if created && c.chown {
		if err := unix.Fchown(fd, c.uid, c.gid); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("chown %s: %w", name, err)
		}
	}
	return fd, nil
}

// clear removes a file or link at dir/name so it can be replaced. A
// directory in the way is reported as a Skip (ok = false).
func (c *copier) clear(dir int, name, cpath, rel string) (ok bool, err error) {
	var st unix.Stat_t
	err = unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return true, nil
	}
	if err != nil {
		return false, c.hostErr(rel, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		c.skip(cpath, fmt.Sprintf("%s is a directory on the host: not replaced", filepath.Join(c.hostPrefix, rel)))
		return false, nil
	}
	if err := unix.Unlinkat(dir, name, 0); err != nil {
		return false, c.hostErr(rel, err)
	}
	return true, nil
}

func (c *copier) hostErr(rel string, err error) error {
	return fmt.Errorf("write artifact %s: %w", filepath.Join(c.hostPrefix, rel), err)
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
