package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
	Ref   string   `arg:"" name:"REMOTE:ALIAS" help:"Image on a remote (simplestreams alias, OCI repo[:tag|@digest]), or oci-layout:/path[:tag]."`
	Alias []string `help:"Local alias for the image (repeatable)."`
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
	if g.JSON {
		return writeJSON(g.Stdout, res.Image)
	}
	_, err = fmt.Fprintf(g.Stdout, "Image pulled with fingerprint: %s\n", res.Image.Fingerprint)
	return err
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
