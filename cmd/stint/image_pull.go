package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"

	"github.com/dustin/go-humanize"
	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/runner"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// ImagePullCmd pulls an image from a remote.
type ImagePullCmd struct {
	Ref        string   `arg:"" name:"REMOTE:ALIAS" help:"Image on a remote (simplestreams alias, OCI repo[:tag|@digest]), or oci-layout:/path[:tag]."`
	Alias      []string `help:"Local alias for the image (repeatable)."`
	AutoUpdate bool     `help:"Keep the image up to date: a use pulls a newer version from the remote (at most every 6h; stint image refresh at once)."`
}

// Run pulls the image.
func (c *ImagePullCmd) Run(g *Globals) error {
	h, s, err := openImageStore(g)
	if err != nil {
		return err
	}
	defer h.Close()
	pr := newPullProgress(g)
	res, err := runner.PullImage(context.Background(), s, g.Root, c.Ref, runner.PullOptions{Aliases: c.Alias, Progress: pr.Update})
	pr.Done()
	if err != nil {
		return pullErr(err)
	}
	img, err := s.UpdateSource(res.Image.Fingerprint, func(src *images.Source) { src.AutoUpdate = c.AutoUpdate })
	if err != nil {
		return withCode(ExitHost, err)
	}
	if g.JSON {
		return writeJSON(g.Stdout, img)
	}
	_, err = fmt.Fprintf(g.Stdout, "Image pulled with fingerprint: %s\n", img.Fingerprint)
	return err
}

// ImageRefreshCmd checks pulled images against their remotes and pulls
// newer versions.
type ImageRefreshCmd struct {
	Images []string `arg:"" optional:"" name:"IMAGE" help:"Pulled images to refresh (alias or fingerprint); default: every image pulled with auto-update."`
}

// refreshed is one line of `image refresh --json`.
type refreshed struct {
	Source      string `json:"source"`
	Fingerprint string `json:"fingerprint"`        // the image in use now
	Previous    string `json:"previous,omitempty"` // the one it replaces
	Error       string `json:"error,omitempty"`
}

// Run refreshes the images: each says "up to date" or "refreshed"; a
// remote that fails is named and the command exits 3 after the others.
func (c *ImageRefreshCmd) Run(g *Globals) error {
	h, s, err := openImageStore(g)
	if err != nil {
		return err
	}
	defer h.Close()
	todo, err := refreshTargets(s, c.Images)
	if err != nil {
		return imageErr(err)
	}
	ctx, stop := signalContext(g.Stderr)
	defer stop()
	var out []refreshed
	failed := ExitOK
	for _, img := range todo {
		pr := newPullProgress(g)
		cur, newer, err := runner.RefreshImage(ctx, s, g.Root, img, runner.RefreshOptions{Progress: pr.Update})
		pr.Done()
		r := refreshed{Source: img.Source.Ref(), Fingerprint: cur.Fingerprint}
		switch {
		case err != nil:
			r.Error = err.Error()
			var coder interface{ ExitCode() int }
			if errors.As(pullErr(err), &coder) {
				failed = max(failed, coder.ExitCode())
			}
			fmt.Fprintf(g.Stderr, "stint: %v\n", err)
		case newer:
			r.Previous = img.Fingerprint
		}
		out = append(out, r)
		if !g.JSON && err == nil {
			msg := "up to date"
			if newer {
				msg = "refreshed from " + img.Fingerprint[:12]
			}
			fmt.Fprintf(g.Stdout, "%s: %s %s\n", r.Source, cur.Fingerprint[:12], msg)
		}
	}
	if g.JSON {
		if err := writeJSON(g.Stdout, out); err != nil {
			return err
		}
	}
	if failed != ExitOK {
		return withCode(failed, errors.New("")) // each failure is printed above
	}
	return nil
}

// refreshTargets are the images named (each must be pulled), or every
// auto-updating pulled image, the newest of each source only.
func refreshTargets(s *images.Store, refs []string) ([]*images.Image, error) {
	if len(refs) > 0 {
		var out []*images.Image
		for _, ref := range refs {
			img, err := s.Resolve(ref)
			if err != nil {
				return nil, err
			}
			if img.Source == nil {
				return nil, fmt.Errorf("image %s: %w: not pulled from a remote", ref, images.ErrInvalidRemote)
			}
			out = append(out, img)
		}
		return out, nil
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	newest := map[string]*images.Image{}
	var order []string
	for _, img := range all {
		if img.Source == nil {
			continue
		}
		ref := img.Source.Ref()
		if have, ok := newest[ref]; !ok {
			order = append(order, ref)
		} else if !images.PulledLater(img, have) {
			continue
		}
		newest[ref] = img
	}
	var out []*images.Image
	for _, ref := range order {
		if newest[ref].Source.AutoUpdate {
			out = append(out, newest[ref])
		}
	}
	return out, nil
}

// pullErr maps a pull's errors to exit codes: a bad reference, an unknown
// remote or image, a taken alias are usage (2); anything the remote sent,
// including an unsafe or invalid image, is the host's (3).
func pullErr(err error) error {
	var amb *images.AmbiguousError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &amb), errors.Is(err, images.ErrInvalidRemote), errors.Is(err, images.ErrInvalidAlias),
		errors.Is(err, images.ErrNotFound), errors.Is(err, images.ErrAliasExists):
		return withCode(ExitUsage, err)
	}
	return withCode(ExitHost, err)
}

// pullProgress reports a pull's downloads: a bar per file on a terminal,
// plain lines per quarter otherwise, nothing with --json.
type pullProgress struct {
	mu    sync.Mutex
	w     io.Writer
	p     *mpb.Progress
	bars  map[string]*mpb.Bar
	steps map[string]int64
	quiet bool
}

func newPullProgress(g *Globals) *pullProgress {
	pp := &pullProgress{w: g.Stderr, quiet: g.JSON, bars: map[string]*mpb.Bar{}, steps: map[string]int64{}}
	if f, ok := g.Stderr.(*os.File); ok && !g.JSON && term.IsTerminal(int(f.Fd())) {
		pp.p = mpb.New(mpb.WithOutput(f), mpb.WithWidth(40))
	}
	return pp
}

// Update is a pull Progress callback.
func (pp *pullProgress) Update(item string, done, total int64) {
	item = shortItem(item)
	pp.mu.Lock()
	defer pp.mu.Unlock()
	switch {
	case pp.quiet:
	case pp.p != nil:
		bar := pp.bars[item]
		if bar == nil {
			bar = pp.p.AddBar(total,
				mpb.PrependDecorators(decor.Name("pull "+item, decor.WC{C: decor.DindentRight | decor.DextraSpace})),
				mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Percentage(decor.WCSyncSpace)))
			pp.bars[item] = bar
		}
		bar.SetCurrent(done)
	default:
		q := int64(4)
		if total > 0 {
			q = done * 4 / total
		}
		if last, ok := pp.steps[item]; !ok || q != last {
			pp.steps[item] = q
			fmt.Fprintf(pp.w, "pull %s: %s / %s (%d%%)\n", item, humanize.IBytes(uint64(done)), humanize.IBytes(uint64(total)), q*25)
		}
	}
}

// shortItem is a download's name as progress shows it: its last path
// segment, long ones (a fingerprint, a digest) cut in the middle, so the
// bar and its numbers fit a terminal line.
func shortItem(item string) string {
	base := path.Base(item)
	if r := []rune(base); len(r) > 32 {
		base = string(r[:12]) + "…" + string(r[len(r)-16:])
	}
	return base
}

// Done ends the bars.
func (pp *pullProgress) Done() {
	pp.mu.Lock()
	bars, p := pp.bars, pp.p
	pp.mu.Unlock()
	for _, bar := range bars {
		bar.SetTotal(-1, true)
	}
	if p != nil {
		p.Wait()
	}
}
