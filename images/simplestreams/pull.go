package simplestreams

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/internal/httpx"
)

// PullOptions tune Pull and Fetch.
type PullOptions struct {
	// Arch is the architecture to pull (LXD's or Go's name; "" for the host's).
	Arch string
	// Aliases are local aliases for the image (`--alias LOCAL`).
	Aliases []string
	// MoveAliases takes the local aliases from the image that has them (an
	// older pull): auto-update's refresh. That image stays in the store.
	MoveAliases bool
	// Progress, when set, is called as each item downloads.
	Progress func(item string, done, total int64)
}

// Pull finds alias on the remote (see Find) and fetches it into s (see Fetch).
func (c *Client) Pull(ctx context.Context, s *images.Store, alias string, o PullOptions) (*images.Image, error) {
	cand, err := c.Find(ctx, alias, o.Arch)
	if err != nil {
		return nil, err
	}
	return c.Fetch(ctx, s, cand, o)
}

// Fetch downloads cand's files and imports them into s, recording the
// source (remote, alias, version) on the image. An image whose fingerprint
// is already stored is not downloaded again: its aliases and source are
// updated. Each item's size and sha256 are checked while it streams, then
// the fingerprint of the whole; a mismatch is an *images.VerifyError
// naming the item, and nothing is stored. Downloads go to a temporary
// directory in the store (.tmp-pull-*), removed whatever happens.
func (c *Client) Fetch(ctx context.Context, s *images.Store, cand *Candidate, o PullOptions) (*images.Image, error) {
	src := &images.Source{Remote: c.remote.Name, URL: c.base.String(), Protocol: images.ProtocolSimplestreams,
		Alias: cand.Alias, Version: cand.Version, Pulled: time.Now().UTC().Truncate(time.Second)}
	opts := images.ImportOptions{Aliases: o.Aliases, MoveAliases: o.MoveAliases, Source: src, Fingerprint: cand.Fingerprint}
	if err := s.CheckAliasesFree(o.Aliases, o.MoveAliases, func(img *images.Image) bool { return img.Fingerprint == cand.Fingerprint }); err != nil {
		return nil, fmt.Errorf("pull %s:%s: %w", c.remote.Name, cand.Alias, err)
	}
	img, err := s.Record(cand.Fingerprint, opts)
	if !errors.Is(err, images.ErrNotFound) {
		return img, err // stored already (or a bad alias)
	}
	tmp, release, err := s.TempDir(".tmp-pull-")
	if err != nil {
		return nil, fmt.Errorf("pull %s:%s: %w", c.remote.Name, cand.Alias, err)
	}
	defer release()
	defer os.RemoveAll(tmp)
	combined := sha256.New()
	var files []string
	for i, it := range cand.Items {
		dst := filepath.Join(tmp, fmt.Sprintf("%d", i))
		if err := c.download(ctx, it, dst, combined, o.Progress); err != nil {
			return nil, fmt.Errorf("pull %s:%s: %w", c.remote.Name, cand.Alias, err)
		}
		files = append(files, dst)
	}
	if got := hex.EncodeToString(combined.Sum(nil)); got != cand.Fingerprint {
		return nil, fmt.Errorf("pull %s:%s: %w", c.remote.Name, cand.Alias,
			&images.VerifyError{Item: cand.Product + " " + cand.Version, What: "fingerprint", Want: cand.Fingerprint, Got: got})
	}
	img, err = s.Import(ctx, files, opts)
	if err != nil {
		return nil, fmt.Errorf("pull %s:%s: %w", c.remote.Name, cand.Alias, err)
	}
	return img, nil
}

// maxResumes is how many times a broken download is resumed.
const maxResumes = 3

// download streams it to dst, feeding combined, and checks its size and
// sha256. A transfer that breaks off (connection lost, stalled) is resumed
// from where it stopped with a Range request, up to maxResumes times, when
// the server honours ranges; the hashes run on across the pieces.
func (c *Client) download(ctx context.Context, it Item, dst string, combined hash.Hash, progress func(string, int64, int64)) error {
	u, err := c.URL(it.Path)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	w := io.MultiWriter(f, h, combined)
	if progress != nil {
		w = io.MultiWriter(w, &progressWriter{item: it.Path, total: it.Size, fn: progress})
	}
	var n int64
	var cause error // what broke the transfer a resume failed to mend
	for attempt := 0; ; attempt++ {
		m, err := c.fetchFrom(ctx, u, it, n, w)
		n += m
		if err == nil {
			break
		}
		if cause != nil && m == 0 {
			err = fmt.Errorf("%w (resume: %v)", cause, err)
		}
		cause = err
		var se *httpx.StatusError
		stop := attempt == maxResumes || ctx.Err() != nil || m == 0 && attempt > 0 ||
			errors.Is(err, images.ErrVerify) || errors.Is(err, images.ErrRefusedURL) || errors.Is(err, httpx.ErrNoResume) || errors.As(err, &se)
		if stop {
			if isTimeout(err) && !errors.Is(err, images.ErrTimeout) {
				err = fmt.Errorf("%w: %v", images.ErrTimeout, err)
			}
			return fmt.Errorf("item %s: after %d of %d bytes: %w", it.Path, n, it.Size, err)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, it.SHA256) {
		return &images.VerifyError{Item: it.Path, What: "sha256", Want: it.SHA256, Got: got}
	}
	return f.Close()
}

// fetchFrom copies the item from byte offset on into w and returns how
// many bytes it copied; a complete item ends exactly at its size.
func (c *Client) fetchFrom(ctx context.Context, u *url.URL, it Item, offset int64, w io.Writer) (int64, error) {
	resp, err := httpx.GetFrom(ctx, c.http, c.remote.Name, u, offset)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	want := it.Size - offset
	if resp.ContentLength >= 0 && resp.ContentLength != want {
		return 0, &images.VerifyError{Item: it.Path, What: "size", Want: fmt.Sprint(it.Size), Got: fmt.Sprint(offset + resp.ContentLength)}
	}
	// One byte more than announced is enough to know it is too long.
	n, err := io.Copy(w, io.LimitReader(resp.Body, want+1))
	switch {
	case n > want:
		return n, &images.VerifyError{Item: it.Path, What: "size", Want: fmt.Sprint(it.Size), Got: "more"}
	case err != nil:
		return n, err
	case n < want: // ended cleanly, short: the server's file is
		return n, &images.VerifyError{Item: it.Path, What: "size", Want: fmt.Sprint(it.Size), Got: fmt.Sprint(offset + n)}
	}
	return n, nil
}

type progressWriter struct {
	item        string
	done, total int64
	fn          func(string, int64, int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	p.fn(p.item, p.done, p.total)
	return len(b), nil
}
