package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/dustin/go-humanize"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// imageProgress reports byte progress: a bar on a terminal, a plain line per
// quarter otherwise, nothing with --json.
type imageProgress struct {
	mu    sync.Mutex
	label string
	w     io.Writer
	p     *mpb.Progress
	bar   *mpb.Bar
	step  int64 // last quarter printed, plain mode
	quiet bool
}

func newImageProgress(g *Globals, label string) *imageProgress {
	ip := &imageProgress{label: label, w: g.Stderr, quiet: g.JSON, step: -1}
	if f, ok := g.Stderr.(*os.File); ok && !g.JSON && term.IsTerminal(int(f.Fd())) {
		ip.p = mpb.New(mpb.WithOutput(f), mpb.WithWidth(40))
	}
	return ip
}

// Update is an images Progress callback.
func (ip *imageProgress) Update(done, total int64) {
	ip.mu.Lock()
	defer ip.mu.Unlock()
	switch {
	case ip.quiet:
	case ip.p != nil:
		if ip.bar == nil {
			ip.bar = ip.p.AddBar(total,
				mpb.PrependDecorators(decor.Name(ip.label, decor.WC{C: decor.DindentRight | decor.DextraSpace})),
				mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Percentage(decor.WCSyncSpace)))
		}
		ip.bar.SetCurrent(done)
	default:
		q := int64(4)
		if total > 0 {
			q = done * 4 / total
		}
		if q != ip.step {
			ip.step = q
			fmt.Fprintf(ip.w, "%s: %s / %s (%d%%)\n", ip.label, humanize.IBytes(uint64(done)), humanize.IBytes(uint64(total)), q*25)
		}
	}
}

// Log prints a status line (not with --json).
func (ip *imageProgress) Log(line string) {
	if !ip.quiet {
		ip.mu.Lock()
		defer ip.mu.Unlock()
		fmt.Fprintf(ip.w, "%s: %s\n", ip.label, line)
	}
}

// Done ends the bar.
func (ip *imageProgress) Done() {
	ip.mu.Lock()
	bar, p := ip.bar, ip.p
	ip.mu.Unlock()
	if bar != nil {
		bar.SetTotal(-1, true)
	}
	if p != nil {
		p.Wait()
	}
}
