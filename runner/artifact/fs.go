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

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/spec"
)

// CollectFS is CollectWith over a container root seen as an fs.FS (a
// remote runtime's file API, container.FileReader): the same globs, `when`
// rules, size cap and destination writer. fsys must implement
// fs.ReadLinkFS: every entry is Lstat'ed and a symlink is copied as a
// symlink (its target verbatim), never opened, so nothing outside the
// container is read; the file system itself resolves paths inside the
// container's root (LXD's does). Options.IDMap is not used: what the file
// system serves is what the container's runtime lets stint read.
func CollectFS(ctx context.Context, fsys fs.FS, arts []spec.Artifact, dest string, jobFailed bool, opts Options) (Result, error) {
	var res Result
	var want []spec.Artifact
	for _, a := range arts {
		if Wanted(a.When, jobFailed) {
			if a.Dest != "" && !filepath.IsLocal(a.Dest) {
				return res, fmt.Errorf("artifact %q: dest %q: %w", a.Path, a.Dest, ErrBadDest)
			}
			want = append(want, a)
		}
	}
	if len(want) == 0 {
		return res, nil
	}
	if _, ok := fsys.(fs.ReadLinkFS); !ok {
		return res, fmt.Errorf("container root %T: no Lstat/ReadLink: symlinks can't be told apart", fsys)
	}
	c := &copier{ctx: ctx, root: -1, res: &res, max: opts.MaxBytes}
	if c.max == 0 {
		c.max = DefaultMaxBytes
	}
	c.uid, c.gid, c.chown = invokingUser()
	destFd, err := c.openDest(dest)
	if err != nil {
		return res, err
	}
	defer unix.Close(destFd)
	fc := &fsCopier{copier: c, fsys: fsys}
	for _, a := range want {
		if err := fc.collect(a, dest, destFd); err != nil {
			return res, err
		}
	}
	return res, nil
}

// fsCopier reads from an fs.FS and writes with the copier's safe writer.
type fsCopier struct {
	*copier
	fsys fs.FS
}

// name is the fs.FS name of the absolute container path p.
func fsName(p string) string {
	if p == "/" {
		return "."
	}
	return strings.TrimPrefix(p, "/")
}

func (c *fsCopier) collect(a spec.Artifact, dest string, destFd int) error {
	pattern := path.Clean("/" + a.Path)
	if pattern == "/" {
		c.skip(a.Path, "the container root itself is not an artifact")
		return nil
	}
	matches, err := c.glob(pattern)
	if errors.Is(err, errBadPattern) {
		c.skip(a.Path, "bad glob pattern")
		return nil
	}
	if err != nil {
		return err
	}
	if len(matches) == 0 {
		c.skip(a.Path, "no match")
		return nil
	}
	dirFd, err := c.destDir(destFd, dest, a.Dest)
	if err != nil {
		return err
	}
	defer unix.Close(dirFd)
	c.hostPrefix = filepath.Join(dest, a.Dest)
	for _, m := range matches {
		if err := c.copyEntry(m, dirFd, path.Base(m), 0); err != nil {
			return err
		}
	}
	return nil
}

// glob expands an absolute, clean container pattern, listing directories
// through the file system; a missing match is found on copy.
func (c *fsCopier) glob(pattern string) ([]string, error) {
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
			ents, err := fs.ReadDir(c.fsys, fsName(p))
			if err != nil {
				continue // not a directory, gone or unreadable: no matches under it
			}
			for _, e := range ents {
				if ok, _ := path.Match(comp, e.Name()); ok {
					next = append(next, path.Join(p, e.Name()))
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

// copyEntry copies the container entry cpath as name into dstDir, by its
// Lstat: never through a symlink.
func (c *fsCopier) copyEntry(cpath string, dstDir int, rel string, depth int) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	fi, err := fs.Lstat(c.fsys, fsName(cpath))
	if errors.Is(err, fs.ErrNotExist) {
		c.skip(cpath, "no match")
		return nil
	}
	if err != nil {
		c.skip(cpath, "stat: "+errText(err))
		return nil
	}
	name := path.Base(cpath)
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		return c.copyLink(cpath, dstDir, name, rel)
	case m.IsRegular():
		return c.copyFile(cpath, m, dstDir, name, rel)
	case m.IsDir():
		return c.copyDir(cpath, m, dstDir, name, rel, depth)
	default:
		c.skip(cpath, fmt.Sprintf("not a regular file, directory or symlink (%s): not copied", m.Type()))
		return nil
	}
}

func (c *fsCopier) copyLink(cpath string, dstDir int, name, rel string) error {
	target, err := fs.ReadLink(c.fsys, fsName(cpath))
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

func (c *fsCopier) copyFile(cpath string, mode fs.FileMode, dstDir int, name, rel string) error {
	if c.capped {
		c.skip(cpath, c.capReason())
		return nil
	}
	src, err := c.fsys.Open(fsName(cpath))
	if err != nil {
		c.skip(cpath, "open: "+errText(err))
		return nil
	}
	defer src.Close()
	if ok, err := c.clear(dstDir, name, cpath, rel); !ok || err != nil {
		return err
	}
	dfd, err := unix.Openat(dstDir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return c.hostErr(rel, err)
	}
	dst := os.NewFile(uintptr(dfd), rel)
	n, err := c.copyCapped(dst, src)
	if err == nil {
		err = c.finish(dfd, uint32(mode.Perm())|stickyBit(mode))
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

func stickyBit(m fs.FileMode) uint32 {
	if m&fs.ModeSticky != 0 {
		return unix.S_ISVTX
	}
	return 0
}

// errRead marks a failure reading the container's side (skipped, not fatal).
var errRead = errors.New("read")

// copyCapped copies src to dst, stopping with errCap before the data
// copied by this Collect would cross the cap (sizes from a file API are not
// known up front, so the count is kept while copying).
func (c *fsCopier) copyCapped(dst io.Writer, src io.Reader) (int64, error) {
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

func (c *fsCopier) copyDir(cpath string, mode fs.FileMode, dstDir int, name, rel string, depth int) error {
	if depth >= maxDepth {
		c.skip(cpath, fmt.Sprintf("deeper than %d directories: not copied", maxDepth))
		return nil
	}
	ents, err := fs.ReadDir(c.fsys, fsName(cpath))
	if err != nil {
		c.skip(cpath, "read directory: "+errText(err))
		return nil
	}
	dfd, err := c.mkdirAt(dstDir, name, 0o700)
	if errors.Is(err, errNotDir) {
		c.skip(cpath, fmt.Sprintf("%s exists on the host and is not a directory (not followed)", filepath.Join(c.hostPrefix, rel)))
		return nil
	}
	if err != nil {
		return c.hostErr(rel, err)
	}
	defer unix.Close(dfd)
	for _, e := range ents {
		if err := c.copyEntry(path.Join(cpath, e.Name()), dfd, path.Join(rel, e.Name()), depth+1); err != nil {
			return err
		}
	}
	// Modes last, so a read-only directory could still be filled.
	if err := c.finish(dfd, uint32(mode.Perm())|stickyBit(mode)); err != nil {
		return c.hostErr(rel, err)
	}
	return nil
}
