package images

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/google/renameio/v2"
	"github.com/stintdev/stint/internal/lazyre"
)

// Store is the image store in one directory. Its methods are safe for
// concurrent use by several stint processes: every change takes a file lock
// and rewrites the index atomically.
type Store struct {
	dir  string
	lock *flock.Flock
}

// index is index.json.
type index struct {
	Images []*Image `json:"images"`
}

// Open opens (creating it if needed) the image store in dir, usually
// <--root>/images.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open image store %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open image store %s: %w", dir, err)
	}
	s := &Store{dir: abs, lock: flock.New(filepath.Join(abs, ".lock"))}
	// What a kill -9 left behind (an import's, pull's or build's
	// temporaries) goes first; a failure is retried at the next open.
	if _, err := s.Sweep(); err != nil {
		slog.Warn("image store: leftovers of a crash not removed", "err", err)
	}
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// withLock runs fn holding the store's exclusive lock, with the index
// loaded; when fn returns save=true the index is written back atomically.
func (s *Store) withLock(fn func(ix *index) (save bool, err error)) error {
	l := flock.New(s.lock.Path()) // one handle per call: flock is per open file
	if err := l.Lock(); err != nil {
		return fmt.Errorf("lock image store %s: %w", s.dir, err)
	}
	defer l.Unlock()
	ix, err := s.load()
	var corrupt *CorruptIndexError
	if errors.As(err, &corrupt) {
		ix, err = s.rebuild(corrupt)
	}
	if err != nil {
		return err
	}
	save, err := fn(ix)
	if err != nil || !save {
		return err
	}
	return s.save(ix)
}

func (s *Store) load() (*index, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &index{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	var ix index
	if err := json.Unmarshal(data, &ix); err != nil {
		return nil, &CorruptIndexError{Path: filepath.Join(s.dir, "index.json"), Err: err}
	}
	for _, img := range ix.Images {
		img.dir = s.dir
	}
	return &ix, nil
}

func (s *Store) save(ix *index) error {
	sort.Slice(ix.Images, func(i, j int) bool { return ix.Images[i].Fingerprint < ix.Images[j].Fingerprint })
	data, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(s.dir, "index.json"), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	return nil
}

// snapshot reads the index under a shared lock; a corrupt one is
// rebuilt under the exclusive lock first.
func (s *Store) snapshot() (*index, error) {
	ix, err := s.loadShared()
	var corrupt *CorruptIndexError
	if !errors.As(err, &corrupt) {
		return ix, err
	}
	var out *index
	err = s.withLock(func(ix *index) (bool, error) { out = ix; return false, nil })
	return out, err
}

func (s *Store) loadShared() (*index, error) {
	l := flock.New(s.lock.Path())
	if err := l.RLock(); err != nil {
		return nil, fmt.Errorf("lock image store %s: %w", s.dir, err)
	}
	defer l.Unlock()
	return s.load()
}

// List returns every image, sorted by fingerprint.
func (s *Store) List() ([]*Image, error) {
	ix, err := s.snapshot()
	if err != nil {
		return nil, err
	}
	return ix.Images, nil
}

var hexRE = lazyre.New(`^[0-9a-f]+$`)

// Resolve finds an image by alias, full fingerprint, the bare name of a
// spec image (NAME for the alias SET/NAME, when one image has it) or unique
// fingerprint prefix. No match is ErrNotFound; several are an
// *AmbiguousError.
func (s *Store) Resolve(ref string) (*Image, error) {
	ix, err := s.snapshot()
	if err != nil {
		return nil, err
	}
	return resolve(ix, ref)
}

func resolve(ix *index, ref string) (*Image, error) {
	if ref == "" {
		return nil, fmt.Errorf("image %q: %w", ref, ErrNotFound)
	}
	for _, img := range ix.Images {
		if contains(img.Aliases, ref) || img.Fingerprint == ref {
			return img, nil
		}
	}
	if img, err := resolveBare(ix, ref); img != nil || err != nil {
		return img, err // a spec image's bare name, before a short hex prefix
	}
	var matches []*Image
	if hexRE.MatchString(ref) {
		for _, img := range ix.Images {
			if strings.HasPrefix(img.Fingerprint, ref) {
				matches = append(matches, img)
			}
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("image %q: %w", ref, ErrNotFound)
	case 1:
		return matches[0], nil
	}
	ae := &AmbiguousError{Ref: ref}
	for _, m := range matches {
		ae.Matches = append(ae.Matches, m.Fingerprint)
	}
	return nil, ae
}

// FindProperty returns the images whose property key equals value.
func (s *Store) FindProperty(key, value string) ([]*Image, error) {
	ix, err := s.snapshot()
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, img := range ix.Images {
		if v, ok := img.Properties[key]; ok && v == value {
			out = append(out, img)
		}
	}
	return out, nil
}

// ImportOptions tune Import.
type ImportOptions struct {
	Aliases     []string                // added to the image (unique across images)
	Fingerprint string                  // expected; the import fails unless the files hash to it
	Properties  map[string]string       // set on top of metadata.yaml's properties
	Progress    func(done, total int64) // bytes copied so far, of total
	// MoveAliases takes an alias that names another image from it instead
	// of failing with ErrAliasExists: a newer pull of a remote image takes
	// its local alias over, and the older image stays in the store.
	MoveAliases bool
	// Source records where the image came from (a remote pull); on an
	// image already in the store it replaces the recorded one.
	Source *Source
}

// Import copies an image into the store: files is [unified] or [meta,
// rootfs]. The fingerprint is computed while copying. Importing an image
// that is already present returns it, with opts.Aliases added.
func (s *Store) Import(ctx context.Context, files []string, opts ImportOptions) (*Image, error) {
	if len(files) != 1 && len(files) != 2 {
		return nil, fmt.Errorf("import image: want a unified tarball or a metadata tarball and a rootfs, got %d files", len(files))
	}
	var total int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("import image: %w", err)
		}
		total += st.Size()
	}
	// Copy into temporary files next to the store, hashing on the way.
	h := sha256.New()
	var tmps []string
	var held []func()
	defer func() {
		for _, t := range tmps {
			os.Remove(t)
		}
		for _, release := range held {
			release()
		}
	}()
	var done int64
	for _, f := range files {
		tmp, err := s.copyIn(ctx, f, h, func(n int64) {
			done += n
			if opts.Progress != nil {
				opts.Progress(done, total)
			}
		}, func(release func()) { held = append(held, release) })
		if tmp != "" {
			tmps = append(tmps, tmp)
		}
		if err != nil {
			return nil, fmt.Errorf("import image %s: %w", f, err)
		}
	}
	fp := hex.EncodeToString(h.Sum(nil))
	if opts.Fingerprint != "" && !strings.EqualFold(opts.Fingerprint, fp) {
		return nil, fmt.Errorf("import image %s: %w: expected %s, got %s", files[0], ErrFingerprintMismatch, opts.Fingerprint, fp)
	}
	img, err := inspect(tmps, fp)
	if err != nil {
		return nil, fmt.Errorf("import image %s: %w", files[0], err)
	}
	img.Size = total
	img.Uploaded = time.Now().UTC().Truncate(time.Second)
	for k, v := range opts.Properties {
		img.Properties[k] = v
	}
	var out *Image
	err = s.withLock(func(ix *index) (bool, error) {
		if err := checkAliases(ix, fp, opts.Aliases, opts.MoveAliases); err != nil {
			return false, err
		}
		for _, have := range ix.Images {
			if have.Fingerprint == fp {
				have.addAliases(opts.Aliases...)
				if opts.Source != nil {
					have.Source = opts.Source.clone()
				}
				out = have.clone()
				return len(opts.Aliases) > 0 || opts.Source != nil, nil
			}
		}
		// Rename into place: a crash leaves either nothing or a complete file.
		if err := os.Rename(tmps[0], filepath.Join(s.dir, fp)); err != nil {
			return false, err
		}
		if len(tmps) == 2 {
			if err := os.Rename(tmps[1], filepath.Join(s.dir, fp+".rootfs")); err != nil {
				os.Remove(filepath.Join(s.dir, fp))
				return false, err
			}
		}
		img.dir = s.dir
		img.addAliases(opts.Aliases...)
		img.Source = opts.Source.clone()
		ix.Images = append(ix.Images, img)
		out = img.clone()
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("import image %s: %w", fp, err)
	}
	return out, nil
}

// copyIn copies src to a temporary file in the store, feeding h, and
// calls keep with its release (TempFile) before anything can fail: the
// file stays held until the import ends, as it is read again and renamed
// into place.
func (s *Store) copyIn(ctx context.Context, src string, h io.Writer, progress func(int64), keep func(release func())) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, release, err := s.TempFile(".tmp-import-")
	if err != nil {
		return "", err
	}
	keep(release)
	defer out.Close()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return out.Name(), err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, err := out.Write(buf[:n]); err != nil {
				return out.Name(), err
			}
			progress(int64(n))
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return out.Name(), rerr
		}
	}
	if err := out.Sync(); err != nil {
		return out.Name(), err
	}
	return out.Name(), out.Close()
}

// inspect reads the metadata of the image in files and checks its shape,
// and its rootfs's entries against the rules extraction applies: a hostile
// image is refused here, not at its first use.
func inspect(files []string, fp string) (*Image, error) {
	var rules *tarRules
	if len(files) == 1 {
		rules = newTarRules("rootfs")
	}
	mc, format, err := scanMetaTar(files[0], false, rules)
	if err != nil {
		return nil, err
	}
	img := &Image{
		Fingerprint:  fp,
		Aliases:      []string{},
		Architecture: mc.meta.Architecture,
		Created:      unixTime(mc.meta.CreationDate),
		Expires:      unixTime(mc.meta.ExpiryDate),
		Properties:   map[string]string{},
		Compression:  format,
		Templates:    mc.meta.Templates,
	}
	for k, v := range mc.meta.Properties {
		img.Properties[k] = v
	}
	if len(files) == 1 {
		if !mc.hasRootfs {
			return nil, fmt.Errorf("%w: unified tarball without rootfs/ (a split image needs its rootfs file too)", ErrInvalidImage)
		}
		return img, nil
	}
	img.Split = true
	f, err := os.Open(files[1])
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	if img.RootfsFormat, err = sniff(head[:n]); err != nil {
		return nil, fmt.Errorf("rootfs: %w", err)
	}
	if img.RootfsFormat != "squashfs" { // unsquashfs does its own checks
		if err := checkTar(files[1], newTarRules("")); err != nil {
			return nil, fmt.Errorf("rootfs: %w", err)
		}
	}
	return img, nil
}

// checkTar runs every entry of the (compressed) tarball at file through
// rules, writing nothing.
func checkTar(file string, rules *tarRules) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	r, _, err := decompress(f)
	if err != nil {
		return err
	}
	defer r.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: tar: %v", ErrInvalidImage, err)
		}
		if _, _, _, err := rules.next(hdr); err != nil {
			return err
		}
	}
}

// touchEvery is how old a recorded last use may be before Touch records a
// new one: writing the index costs an fsync (milliseconds on a loop-file
// pool), and jobs resolve their image many times a minute.
const touchEvery = time.Minute

// Touch records that img was used now (prune keeps recently used images),
// to the minute: a last use the index recorded less than touchEvery ago is
// kept, without a write.
func (s *Store) Touch(img *Image) error {
	now := time.Now().UTC().Truncate(time.Second)
	if ix, err := s.snapshot(); err == nil {
		for _, have := range ix.Images {
			if age := now.Sub(have.LastUsed); have.Fingerprint == img.Fingerprint && !have.LastUsed.IsZero() && age >= 0 && age < touchEvery {
				img.LastUsed = have.LastUsed
				return nil
			}
		}
	}
	err := s.withLock(func(ix *index) (bool, error) {
		for _, have := range ix.Images {
			if have.Fingerprint == img.Fingerprint {
				have.LastUsed = now
				return true, nil
			}
		}
		return false, fmt.Errorf("image %s: %w", img.Fingerprint, ErrNotFound)
	})
	if err == nil {
		img.LastUsed = now
	}
	return err
}

// Delete removes the image ref names, its files and its aliases.
func (s *Store) Delete(ref string) (*Image, error) {
	var gone *Image
	err := s.withLock(func(ix *index) (bool, error) {
		img, err := resolve(ix, ref)
		if err != nil {
			return false, err
		}
		for i, have := range ix.Images {
			if have == img {
				ix.Images = append(ix.Images[:i], ix.Images[i+1:]...)
				break
			}
		}
		gone = img
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("delete image: %w", err)
	}
	// The index no longer names the files: remove them after it is saved, so
	// a crash in between leaves an orphan file, never a dangling entry.
	for _, p := range []string{gone.Path(), gone.RootfsPath()} {
		if p != "" {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return gone, fmt.Errorf("delete image %s: %w", gone.Fingerprint, err)
			}
		}
	}
	return gone, nil
}

// Export copies img's files into dir, byte for byte as imported, under the
// names `lxc image export` uses (see ExportNames). It returns the paths.
func (s *Store) Export(ctx context.Context, img *Image, dir string, progress func(done, total int64)) ([]string, error) {
	src := []string{img.Path()}
	if img.Split {
		src = append(src, img.RootfsPath())
	}
	names := img.ExportNames()
	total := img.Size
	var done int64
	var out []string
	for i, p := range src {
		dst := filepath.Join(dir, names[i])
		if err := copyFile(ctx, p, dst, func(n int64) {
			done += n
			if progress != nil {
				progress(done, total)
			}
		}); err != nil {
			return out, fmt.Errorf("export image %s to %s: %w", img.Fingerprint, dst, err)
		}
		out = append(out, dst)
	}
	return out, nil
}

func copyFile(ctx context.Context, src, dst string, progress func(int64)) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := renameio.NewPendingFile(dst, renameio.WithPermissions(0o644))
	if err != nil {
		return err
	}
	defer out.Cleanup()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return err
			}
			progress(int64(n))
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	return out.CloseAtomicallyReplace()
}
