package artifact

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/spec"
)

// CollectFS is CollectWith over a container root seen as an fs.FS (a
// remote runtime's file API, container.FileReader): the same copier, so
// the same globs, `when` rules, skip reasons, size cap and destination
// writer. fsys must implement fs.ReadLinkFS: every entry is Lstat'ed and a
// symlink is copied as a symlink (its target verbatim), never opened, so
// nothing outside the container is read; the file system itself resolves
// paths inside the container's root (LXD's does). Options.IDMap is not
// used: what the file system serves is what the container's runtime lets
// stint read.
func CollectFS(ctx context.Context, fsys fs.FS, arts []spec.Artifact, dest string, jobFailed bool, opts Options) (Result, error) {
	return collect(ctx, arts, dest, jobFailed, opts, func() (source, error) {
		if _, ok := fsys.(fs.ReadLinkFS); !ok {
			return nil, fmt.Errorf("container root %T: no Lstat/ReadLink: symlinks can't be told apart", fsys)
		}
		return fsSource{fsys}, nil
	})
}

// fsSource reads a container root through an fs.FS, by path.
type fsSource struct{ fsys fs.FS }

// fsName is the fs.FS name of the absolute container path p.
func fsName(p string) string {
	if p == "/" || p == "" {
		return "."
	}
	return strings.Trim(p, "/")
}

func (s fsSource) close() {}

func (s fsSource) list(p string) ([]string, error) {
	ents, err := fs.ReadDir(s.fsys, fsName(p))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	slices.Sort(names)
	return names, nil
}

func (s fsSource) dir(p string) (srcDir, error) {
	return fsDir{s.fsys, path.Clean("/" + p), 0}, nil // a missing one is found by lstat
}

// fsDir is a container directory of an fsSource, by its path.
type fsDir struct {
	fsys fs.FS
	p    string
	mode fs.FileMode
}

func (d fsDir) close()                  {}
func (d fsDir) perm() uint32            { return modeBits(d.mode) }
func (d fsDir) name(name string) string { return fsName(path.Join(d.p, name)) }

func (d fsDir) lstat(name string) (fs.FileMode, error) {
	fi, err := fs.Lstat(d.fsys, d.name(name))
	if err != nil {
		return 0, err
	}
	return fi.Mode().Type(), nil
}

func (d fsDir) readLink(name string) (string, error) { return fs.ReadLink(d.fsys, d.name(name)) }

func (d fsDir) open(name string) (srcFile, error) {
	f, err := d.fsys.Open(d.name(name))
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, skipError("changed while being copied: not copied")
	}
	return fsFile{f, fi.Mode()}, nil
}

func (d fsDir) sub(name string) (srcDir, []string, error) {
	p := path.Join(d.p, name)
	fi, err := fs.Lstat(d.fsys, fsName(p))
	if err != nil {
		return nil, nil, err
	}
	if !fi.IsDir() {
		return nil, nil, skipError("changed while being copied: not copied")
	}
	names, err := fsSource{d.fsys}.list(p)
	if err != nil {
		return nil, nil, err
	}
	return fsDir{d.fsys, p, fi.Mode()}, names, nil
}

// fsFile is an open regular file of an fsSource.
type fsFile struct {
	f    fs.File
	mode fs.FileMode
}

func (f fsFile) close()       { f.f.Close() }
func (f fsFile) perm() uint32 { return modeBits(f.mode) }

// copyTo streams the file: a file API's sizes are not known up front, so
// the cap is counted while copying.
func (f fsFile) copyTo(c *copier, dst *os.File) (int64, error) {
	return c.copyStream(dst, f.f)
}

// modeBits is an fs.FileMode's permission and sticky bits as st_mode has them.
func modeBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		b |= unix.S_ISVTX
	}
	return b
}
