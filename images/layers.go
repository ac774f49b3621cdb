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

	"golang.org/x/sys/unix"
)

// Whiteout names of the OCI image layer format.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// LayerApplier unpacks OCI image layers, in order, into one root
// filesystem directory, with the rules of ExtractTar (no absolute names or
// ".." components, no path through a symlink, hard links only to regular
// files seen before, devices skipped unless root and allowed, every path
// resolved with RESOLVE_BENEATH) and the layer format's whiteouts:
//
//   - DIR/.wh.NAME deletes DIR/NAME (a file, or a directory with its
//     contents) left by an earlier layer; NAME may not be "", "." or "..";
//   - DIR/.wh..wh..opq makes DIR opaque: what earlier layers put in it is
//     deleted, what this layer puts in it stays.
//
// Whiteouts are never written to the tree. Deleting never follows a
// symlink. Hard links may name a file of an earlier layer.
//
// Lifecycle: NewLayerApplier, Apply per layer (its uncompressed tar
// stream), Close (sets directory times, releases the directory). A failed
// Apply leaves a partial tree: the caller discards the directory.
type LayerApplier struct {
	x     *extractor
	rules *tarRules // across layers: what each path holds now
}

// NewLayerApplier opens dir, an existing (usually empty) directory.
func NewLayerApplier(dir string, opts UnpackOptions) (*LayerApplier, error) {
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	return &LayerApplier{
		x:     &extractor{root: root, opts: opts, owner: os.Geteuid() == 0, replaceDirs: true},
		rules: newTarRules(""),
	}, nil
}

// Apply unpacks one layer's tar stream r on top of the earlier ones. A
// refused entry is an *UnsafeEntryError naming it.
func (a *LayerApplier) Apply(ctx context.Context, r io.Reader) error {
	created := map[string]bool{} // paths this layer made (opaque dirs keep them)
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read layer tar: %w", err)
		}
		clean, err := cleanName(hdr.Name)
		if err != nil {
			return err
		}
		dir, base := path.Split(clean)
		if strings.HasPrefix(base, whiteoutPrefix) {
			if err := a.whiteout(hdr.Name, strings.TrimSuffix(dir, "/"), base, created); err != nil {
				return err
			}
			continue
		}
		name, link, ok, err := a.rules.next(hdr)
		if err != nil {
			return err
		}
		if !ok || name == "" {
			if ok && hdr.Typeflag == tar.TypeDir {
				if err := a.x.rootDir(hdr); err != nil {
					return fmt.Errorf("extract %q: %w", hdr.Name, err)
				}
			}
			continue
		}
		for p := name; p != "." && p != "/" && p != ""; p = path.Dir(p) {
			created[p] = true
		}
		if hdr.Typeflag != tar.TypeDir {
			a.rules.forgetBelow(name) // a directory it replaces goes with its contents
		}
		if err := a.x.entry(hdr, name, link, tr); err != nil {
			return err
		}
	}
}

// whiteout handles the whiteout entry entry (dir/base, cleaned).
func (a *LayerApplier) whiteout(entry, dir, base string, created map[string]bool) error {
	unsafe := func(reason string) error { return &UnsafeEntryError{Entry: entry, Reason: reason} }
	if reason := a.rules.parents(path.Join(dir, base), false); reason != "" {
		return unsafe(reason)
	}
	opaque := base == whiteoutOpaque
	target := strings.TrimPrefix(base, whiteoutPrefix)
	if !opaque {
		switch {
		case target == "" || target == "." || target == "..":
			return unsafe(fmt.Sprintf("whiteout of %q: outside its directory", target))
		case strings.HasPrefix(target, whiteoutPrefix):
			return nil // another whiteout-format metadata file (.wh..wh.plnk, ...): nothing to do
		}
	}
	// The directory holding the deleted name, or the opaque directory.
	fd, _, err := a.x.parent(path.Join(dir, "x"), opaque)
	if errors.Is(err, unix.ENOENT) && !opaque {
		return nil // nothing there to delete
	}
	if err != nil {
		var ue *UnsafeEntryError
		if errors.As(err, &ue) {
			return unsafe(ue.Reason)
		}
		return fmt.Errorf("whiteout %q: %w", entry, err)
	}
	defer unix.Close(fd)
	if !opaque {
		a.rules.forget(path.Join(dir, target))
		if err := removeAllAt(fd, target); err != nil {
			return fmt.Errorf("whiteout %q: %w", entry, err)
		}
		return nil
	}
	if dir != "" {
		a.rules.kinds[dir] = kindDir
	}
	// An O_PATH descriptor can't be listed: open the directory itself.
	dfd, err := unix.Openat2(fd, ".", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath})
	if err != nil {
		return fmt.Errorf("whiteout %q: %w", entry, err)
	}
	d := os.NewFile(uintptr(dfd), dir)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("whiteout %q: %w", entry, err)
	}
	for _, n := range names {
		p := path.Join(dir, n)
		if created[p] {
			continue
		}
		a.rules.forget(p)
		if err := removeAllAt(dfd, n); err != nil {
			return fmt.Errorf("whiteout %q: %w", entry, err)
		}
	}
	return nil
}

// Close sets the directories' modification times and releases the
// directory. It returns warnings about what was not reproduced.
func (a *LayerApplier) Close() []string {
	a.x.dirTimes()
	unix.Close(a.x.root)
	return a.x.warnings()
}

// forget drops name and everything below it: a whiteout deleted them.
func (r *tarRules) forget(name string) {
	delete(r.kinds, name)
	r.forgetBelow(name)
}

// forgetBelow drops everything below name.
func (r *tarRules) forgetBelow(name string) {
	for k := range r.kinds {
		if strings.HasPrefix(k, name+"/") {
			delete(r.kinds, k)
		}
	}
}

// removeAllAt deletes name in the directory parent and, for a directory,
// everything in it; a symlink is removed, never followed.
func removeAllAt(parent int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(parent, name, 0)
	}
	fd, err := unix.Openat2(parent, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: beneath})
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	names, err := d.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	d.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(parent, name, unix.AT_REMOVEDIR)
}
