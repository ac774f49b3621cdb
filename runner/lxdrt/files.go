package lxdrt

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	lxd "github.com/canonical/lxd/client"

	"github.com/stintdev/stint/runner/container"
)

// copyIn copies the host directory (or file) src to target in the stopped
// instance through the file API: directories, regular files and symlinks
// (as links, their targets verbatim), owned by the container's root, modes
// kept; other kinds are skipped. Symlinks on the host are never followed.
func (r *Runtime) copyIn(ctx context.Context, name, src, target string) error {
	inst := InstanceName(name)
	if err := r.mkdirAll(inst, path.Dir(path.Clean(target))); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		dst := path.Join(target, filepath.ToSlash(rel))
		fi, err := d.Info()
		if err != nil {
			return err
		}
		args := lxd.InstanceFileArgs{UID: 0, GID: 0, Mode: int(fi.Mode().Perm()), WriteMode: "overwrite"}
		switch {
		case d.IsDir():
			args.Type = "directory"
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			args.Type, args.Content = "symlink", strings.NewReader(link)
		case d.Type().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			args.Type, args.Content = "file", f
		default:
			return nil // devices, fifos, sockets: not copied
		}
		if err := r.c.CreateInstanceFile(inst, dst, args); err != nil {
			return fmt.Errorf("push %s: %w", dst, err)
		}
		return nil
	})
}

// mkdirAll creates dir and its parents in the instance (existing ones are
// fine: LXD answers a directory push onto a directory with success).
func (r *Runtime) mkdirAll(inst, dir string) error {
	if dir == "/" || dir == "." {
		return nil
	}
	if err := r.mkdirAll(inst, path.Dir(dir)); err != nil {
		return err
	}
	_, resp, err := r.c.GetInstanceFile(inst, dir)
	if err == nil && resp.Type == "directory" {
		return nil
	}
	if err := r.c.CreateInstanceFile(inst, dir, lxd.InstanceFileArgs{Type: "directory", Mode: 0o755}); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return nil
}

// Files returns the instance's root as the container sees it, read
// through the file API. LXD resolves every path inside the instance's
// root (as under chroot), and reports a symlink as a link: Open of a
// symlink returns an error wrapping fs.ErrInvalid, Lstat and ReadLink
// describe it, and nothing out of the root is ever read.
func (r *Runtime) Files(ctx context.Context, name string) (fs.FS, error) {
	inst, _, err := r.instance(name)
	if err != nil {
		return nil, err
	}
	if inst == nil {
		return nil, r.fail(name, "files", container.ErrNotFound)
	}
	return &remoteFS{c: r.c, inst: inst.Name}, nil
}

// remoteFS is an fs.FS (with ReadDir, Stat, Lstat and ReadLink) over an
// instance's file API.
type remoteFS struct {
	c    lxd.InstanceServer
	inst string
}

// fileInfo describes a remote file; sizes are unknown (-1) until read.
type fileInfo struct {
	name string
	mode fs.FileMode
	size int64
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fileInfo) Sys() any           { return nil }

func (f *remoteFS) get(op, name string) (io.ReadCloser, *lxd.InstanceFileResponse, error) {
	if !fs.ValidPath(name) {
		return nil, nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	body, resp, err := f.c.GetInstanceFile(f.inst, "/"+name)
	if err != nil {
		if notFound(err) {
			err = fs.ErrNotExist
		}
		return nil, nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	if body == nil { // a directory: the client read its listing
		body = io.NopCloser(strings.NewReader(""))
	}
	return body, resp, nil
}

func modeOf(resp *lxd.InstanceFileResponse) fs.FileMode {
	m := fs.FileMode(resp.Mode).Perm()
	switch resp.Type {
	case "directory":
		m |= fs.ModeDir
	case "symlink":
		m |= fs.ModeSymlink
	}
	return m
}

// Lstat describes name without following a final symlink.
func (f *remoteFS) Lstat(name string) (fs.FileInfo, error) {
	body, resp, err := f.get("lstat", name)
	if err != nil {
		return nil, err
	}
	body.Close()
	return fileInfo{name: path.Base(name), mode: modeOf(resp), size: -1}, nil
}

// Stat is Lstat: a symlink is never followed (fs.Stat on a link reports
// the link).
func (f *remoteFS) Stat(name string) (fs.FileInfo, error) { return f.Lstat(name) }

// ReadLink returns a symlink's target, verbatim.
func (f *remoteFS) ReadLink(name string) (string, error) {
	body, resp, err := f.get("readlink", name)
	if err != nil {
		return "", err
	}
	defer body.Close()
	if resp.Type != "symlink" {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	b, err := io.ReadAll(io.LimitReader(body, 4096))
	return string(b), err
}

// ReadDir lists a directory, sorted, each entry described by Lstat.
func (f *remoteFS) ReadDir(name string) ([]fs.DirEntry, error) {
	body, resp, err := f.get("readdir", name)
	if err != nil {
		return nil, err
	}
	body.Close()
	if resp.Type != "directory" {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	var out []fs.DirEntry
	for _, e := range resp.Entries {
		fi, err := f.Lstat(path.Join(name, e))
		if err != nil {
			continue // gone meanwhile
		}
		out = append(out, fs.FileInfoToDirEntry(fi))
	}
	sortEntries(out)
	return out, nil
}

// Open opens a regular file or a directory; a symlink is not followed.
func (f *remoteFS) Open(name string) (fs.File, error) {
	body, resp, err := f.get("open", name)
	if err != nil {
		return nil, err
	}
	info := fileInfo{name: path.Base(name), mode: modeOf(resp), size: -1}
	switch resp.Type {
	case "file":
		return &remoteFile{ReadCloser: body, info: info}, nil
	case "directory":
		body.Close()
		return &remoteDir{fs: f, path: name, info: info}, nil
	}
	body.Close()
	return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("a %s: %w", resp.Type, fs.ErrInvalid)}
}

type remoteFile struct {
	io.ReadCloser
	info fileInfo
}

func (f *remoteFile) Stat() (fs.FileInfo, error) { return f.info, nil }

type remoteDir struct {
	fs   *remoteFS
	path string
	info fileInfo
	ents []fs.DirEntry
	read bool
}

func (d *remoteDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *remoteDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: fs.ErrInvalid}
}
func (d *remoteDir) Close() error { return nil }

// ReadDir implements fs.ReadDirFile.
func (d *remoteDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		ents, err := d.fs.ReadDir(d.path)
		if err != nil {
			return nil, err
		}
		d.ents, d.read = ents, true
	}
	if n <= 0 {
		out := d.ents
		d.ents = nil
		return out, nil
	}
	if len(d.ents) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.ents))
	out := d.ents[:n]
	d.ents = d.ents[n:]
	return out, nil
}

func sortEntries(e []fs.DirEntry) {
	slices.SortFunc(e, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
}
