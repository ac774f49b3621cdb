package lxdrt

import (
	"archive/tar"
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

// bindsDir holds the tarballs of read-only binds between Create and
// Start; Start extracts them and removes it.
const bindsDir = "/.stint-binds"

// copyIn packs the host directory (or file) src as a tarball whose entries
// are rooted at target, and pushes it into the stopped instance as the
// i-th bind (bindsDir/<i>.tar) in one request; Start extracts it. Entries
// are directories, regular files and symlinks (as links, targets
// verbatim), owned by root, modes kept; other kinds are left out. Host
// symlinks are never followed.
func (r *Runtime) copyIn(ctx context.Context, name string, i int, src, target string) error {
	f, err := os.CreateTemp("", "stint-bind-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := packTree(ctx, f, src, strings.TrimPrefix(path.Clean(target), "/")); err != nil {
		return fmt.Errorf("pack %s: %w", src, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	inst := InstanceName(name)
	if i == 1 {
		if err := r.c.CreateInstanceFile(inst, bindsDir, lxd.InstanceFileArgs{Type: "directory", Mode: 0o700}); err != nil {
			return fmt.Errorf("mkdir %s: %w", bindsDir, err)
		}
	}
	dst := fmt.Sprintf("%s/%d.tar", bindsDir, i)
	if err := r.c.CreateInstanceFile(inst, dst, lxd.InstanceFileArgs{Type: "file", Mode: 0o600, Content: f, WriteMode: "overwrite"}); err != nil {
		return fmt.Errorf("push %s: %w", dst, err)
	}
	return nil
}

// packTree writes src as a tarball whose entries are named under prefix.
func packTree(ctx context.Context, w io.Writer, src, prefix string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
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
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: path.Join(prefix, filepath.ToSlash(rel)), Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime(), Format: tar.FormatPAX}
		switch {
		case d.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		case d.Type()&fs.ModeSymlink != 0:
			if hdr.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
			hdr.Typeflag = tar.TypeSymlink
		case d.Type().IsRegular():
			hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		default:
			return nil // devices, fifos, sockets: not copied
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.CopyN(tw, in, hdr.Size)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
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
