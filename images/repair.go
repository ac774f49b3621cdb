package images

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/stintdev/stint/internal/lazyre"
)

// A corrupt index (index.json that does not parse: a torn write on a
// filesystem without rename atomicity, a hand edit) would fail every image
// command and every job. The store repairs itself instead: the index is
// moved aside and rebuilt from the image files, which are named by their
// fingerprints and checked against them again.

// CorruptIndexError is an index.json that does not parse.
type CorruptIndexError struct {
	Path string
	Err  error
}

func (e *CorruptIndexError) Error() string {
	return fmt.Sprintf("image index %s is corrupt: %v", e.Path, e.Err)
}

func (e *CorruptIndexError) Unwrap() error { return e.Err }

var fpFileRE = lazyre.New(`^[0-9a-f]{64}$`)

// rebuild moves the corrupt index aside (index.json.corrupt-<unix time>)
// and makes a new one from the image files: each <fingerprint> (with its
// .rootfs) whose contents still hash to its name is an image again, with
// its metadata, size and upload time (the file's mtime); aliases, sources
// and last-used times are lost and said so. A file that no longer matches
// its name is removed. The caller holds the store's exclusive lock.
func (s *Store) rebuild(cause *CorruptIndexError) (*index, error) {
	aside := fmt.Sprintf("%s.corrupt-%d", cause.Path, time.Now().Unix())
	if err := os.Rename(cause.Path, aside); err != nil {
		return nil, fmt.Errorf("%w (moving it aside: %w)", cause, err)
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("rebuild image index: %w", err)
	}
	ix := &index{}
	var dropped []string
	for _, e := range ents {
		if !e.Type().IsRegular() || !fpFileRE.MatchString(e.Name()) {
			continue
		}
		img, err := s.recoverImage(e.Name())
		if err != nil {
			dropped = append(dropped, e.Name()[:12])
			slog.Warn("image store: removed an image file that is no longer an image", "file", filepath.Join(s.dir, e.Name()), "err", err)
			os.Remove(filepath.Join(s.dir, e.Name()))
			os.Remove(filepath.Join(s.dir, e.Name()+".rootfs"))
			continue
		}
		ix.Images = append(ix.Images, img)
	}
	if err := s.save(ix); err != nil {
		return nil, err
	}
	slog.Warn(fmt.Sprintf("image store: %v; moved it to %s and rebuilt it from the image files: %d image(s) recovered, %d removed; their aliases, sources and last-used times are lost (stint image alias add)",
		cause, aside, len(ix.Images), len(dropped)))
	return ix, nil
}

// recoverImage makes the index entry of the image stored under fp.
func (s *Store) recoverImage(fp string) (*Image, error) {
	files := []string{filepath.Join(s.dir, fp)}
	if _, err := os.Stat(files[0] + ".rootfs"); err == nil {
		files = append(files, files[0]+".rootfs")
	}
	h := sha256.New()
	var size int64
	var mtime time.Time
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		n, err := io.Copy(h, f)
		st, serr := f.Stat()
		f.Close()
		if err = errors.Join(err, serr); err != nil {
			return nil, err
		}
		size += n
		mtime = st.ModTime()
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != fp {
		return nil, fmt.Errorf("%w: files hash to %s", ErrFingerprintMismatch, got)
	}
	img, err := inspect(files, fp)
	if err != nil {
		return nil, err
	}
	img.Size, img.Uploaded, img.dir = size, mtime.UTC().Truncate(time.Second), s.dir
	return img, nil
}
