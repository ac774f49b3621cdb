package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"
)

// source is a container root as Collect reads it: through descriptors on
// the host (localSource, openat2 inside the root) or through a file API
// (fsSource, a remote's). The copier does everything else the same way for
// both: globs, skip reasons, `when`, the cap, the destination writer.
type source interface {
	// list returns the names in the container directory p, sorted, for a
	// glob; a skipError says why the container could not list it.
	list(p string) ([]string, error)
	// dir opens the container directory p, a match's parent, resolved
	// inside the root; a skipError says why the container could not.
	dir(p string) (srcDir, error)
	close()
}

// srcDir is an open container directory. Its entries are named by one
// component and never followed: a symlink is an entry of its own.
type srcDir interface {
	// lstat returns the entry's type (fs.ModeType bits; 0 for a regular file).
	lstat(name string) (fs.FileMode, error)
	readLink(name string) (string, error)
	// open opens a regular file for reading; a skipError says why not.
	open(name string) (srcFile, error)
	// sub opens a subdirectory and lists it, sorted; a skipError says why not.
	sub(name string) (srcDir, []string, error)
	// perm is the directory's permission bits, for its copy.
	perm() uint32
	close()
}

// srcFile is an open regular file of the container.
type srcFile interface {
	perm() uint32
	// copyTo copies the file's data to dst under the copier's cap: errCap
	// before crossing it, an errRead error for the container's side.
	copyTo(c *copier, dst *os.File) (int64, error)
	close()
}

// copier holds one Collect's source and its bookkeeping.
type copier struct {
	ctx        context.Context
	src        source
	res        *Result
	uid, gid   int
	chown      bool
	shown      string // dest as messages show it (shownPath)
	hostPrefix string // the host directory being written, for messages
	max        int64  // cap on Result.Bytes; negative: none
	capped     bool   // the cap was reached: no more file data
	tooDeep    string // the first directory cut at maxDepth
}

func (c *copier) skip(p, reason string) {
	c.res.Skipped = append(c.res.Skipped, Skip{Path: p, Reason: reason})
}

func (c *copier) lastSkip(p string) string {
	if n := len(c.res.Skipped); n > 0 && c.res.Skipped[n-1].Path == p {
		return c.res.Skipped[n-1].Reason
	}
	return ""
}

// skipError is a reason, in full, for not copying an entry.
type skipError string

func (e skipError) Error() string { return string(e) }

// errRead marks a failure reading the container's side (skipped, not fatal).
var errRead = errors.New("read")

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// errBadPattern reports a malformed glob; path.Match's own error says why.
var errBadPattern = path.ErrBadPattern

// glob expands an absolute, clean container pattern. Directories on the way
// are resolved inside the root; the last component is matched, not
// resolved; a literal component's existence is checked on copy.
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
				next = append(next, path.Join(p, comp))
				continue
			}
			names, err := c.src.list(p)
			var why skipError
			if errors.As(err, &why) {
				c.skip(p, string(why))
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

// copyMatch copies the container entry m into the host directory dstFd.
func (c *copier) copyMatch(m string, dstFd int) error {
	parent, base := path.Split(m)
	d, err := c.src.dir(parent)
	var why skipError
	switch {
	case errors.As(err, &why):
		c.skip(m, string(why))
		return nil
	case errors.Is(err, fs.ErrNotExist):
		c.skip(m, MatchedNothing)
		return nil
	case err != nil:
		c.skip(m, "resolve "+parent+" inside the container: "+errText(err))
		return nil
	}
	defer d.close()
	return c.copyEntry(d, base, m, dstFd, base, 0)
}

// errText is an errno's message without Go's wrapping.
func errText(err error) string {
	var en unix.Errno
	var why skipError
	switch {
	case errors.As(err, &why):
		return string(why)
	case errors.As(err, &en):
		return en.Error()
	}
	return err.Error()
}

// copyEntry copies d/name (never following it) to dstDir/name. rel is the
// path under the artifact's host directory. Only a host-side failure or
// cancellation is an error; anything odd in the container is a Skip.
func (c *copier) copyEntry(d srcDir, name, cpath string, dstDir int, rel string, depth int) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	typ, err := d.lstat(name)
	if depth == 0 && errors.Is(err, fs.ErrNotExist) {
		c.skip(cpath, MatchedNothing)
		return nil
	}
	if err != nil {
		c.skip(cpath, errText(err))
		return nil
	}
	switch {
	case typ&fs.ModeSymlink != 0:
		return c.copyLink(d, name, cpath, dstDir, rel)
	case typ.IsRegular():
		return c.copyFile(d, name, cpath, dstDir, rel)
	case typ.IsDir():
		return c.copyDir(d, name, cpath, dstDir, rel, depth)
	case typ&fs.ModeCharDevice != 0:
		c.skip(cpath, "character device: not copied")
	case typ&fs.ModeDevice != 0:
		c.skip(cpath, "block device: not copied")
	case typ&fs.ModeNamedPipe != 0:
		c.skip(cpath, "fifo: not copied")
	case typ&fs.ModeSocket != 0:
		c.skip(cpath, "socket: not copied")
	default:
		c.skip(cpath, fmt.Sprintf("unknown file type %s: not copied", typ.Type()))
	}
	return nil
}

func (c *copier) copyLink(d srcDir, name, cpath string, dstDir int, rel string) error {
	target, err := d.readLink(name)
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

func (c *copier) copyFile(d srcDir, name, cpath string, dstDir int, rel string) error {
	if c.capped {
		c.skip(cpath, c.capReason())
		return nil
	}
	src, err := d.open(name)
	if err != nil {
		c.skip(cpath, prefixed("open: ", err))
		return nil
	}
	defer src.close()
	if ok, err := c.clear(dstDir, name, cpath, rel); !ok || err != nil {
		return err
	}
	dfd, err := unix.Openat(dstDir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return c.hostErr(rel, err)
	}
	dst := os.NewFile(uintptr(dfd), rel)
	n, err := src.copyTo(c, dst)
	if err == nil {
		err = c.finish(dfd, src.perm())
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(dstDir, name, 0) // no half file left behind
		switch {
		case errors.Is(err, errCap):
			c.capped = true
			c.skip(cpath, c.capReason())
			return nil
		case c.ctx.Err() != nil:
			return c.ctx.Err()
		case errors.Is(err, errRead):
			c.skip(cpath, errText(err))
			return nil
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

// prefixed is err's text after what, unless err gives a reason in full.
func prefixed(what string, err error) string {
	var why skipError
	if errors.As(err, &why) {
		return string(why)
	}
	return what + errText(err)
}

// errCap stops a copy that would cross the size cap.
var errCap = errors.New("artifact size cap reached")

func (c *copier) capReason() string {
	return fmt.Sprintf("the artifacts' size cap (%s of file data) is reached: not copied", humanize.IBytes(uint64(c.max)))
}

// copyStream copies src to dst until EOF, stopping with errCap before the
// data copied by this Collect would cross the cap: for files whose size
// says nothing (a file API's, /proc's and /sys's, whose files say 0 or
// 4096 whatever they hold).
func (c *copier) copyStream(dst io.Writer, src io.Reader) (int64, error) {
	var n int64
	buf := make([]byte, 256<<10)
	for {
		if err := c.ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := src.Read(buf)
		if k > 0 {
			if c.max >= 0 && c.res.Bytes+n+int64(k) > c.max {
				return n, errCap
			}
			w, err := dst.Write(buf[:k])
			n += int64(w)
			if err != nil {
				return n, err
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("%w: %w", errRead, rerr)
		}
	}
}

func (c *copier) copyDir(d srcDir, name, cpath string, dstDir int, rel string, depth int) error {
	if depth >= maxDepth {
		c.skip(cpath, fmt.Sprintf("deeper than %d directories below its match: not copied, nor anything in it", maxDepth))
		if c.tooDeep == "" {
			c.tooDeep = cpath
		}
		return nil
	}
	sub, names, err := d.sub(name)
	if err != nil {
		c.skip(cpath, prefixed("read directory: ", err))
		return nil
	}
	defer sub.close()
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
		if err := c.copyEntry(sub, n, path.Join(cpath, n), dfd, path.Join(rel, n), depth+1); err != nil {
			return err
		}
	}
	// Modes last, so a read-only directory could still be filled.
	if err := c.finish(dfd, sub.perm()); err != nil {
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
