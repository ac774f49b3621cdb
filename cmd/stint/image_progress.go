package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/stintdev/stint/runner/output"
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

// phaseProgress shows what a job waits for before its container exists
// (its image: build, pull or import; its golden volume): on a terminal a
// spinner line with the elapsed time while each runs; then, terminal or
// not, one line when it ends on stderr: "[job] image: cached", "[job]
// image: ready in 46.0s", "[job] golden volume: made in 13.2s" (a golden
// volume already there says nothing).
type phaseProgress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     *os.File // a terminal; nil: plain lines only
	running map[string]*phaseSpinner
}

type phaseSpinner struct {
	p   *mpb.Progress
	bar *mpb.Bar
}

func newPhaseProgress(g *Globals) *phaseProgress {
	pp := &phaseProgress{w: g.Stderr, running: map[string]*phaseSpinner{}}
	under := g.Stderr
	if pg, ok := under.(*pipeGuard); ok {
		under = pg.w
	}
	if f, ok := under.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		// mpb draws on the terminal itself (it sizes the line by it); the
		// guard is for pipes, and a terminal is none.
		pp.tty = f
	}
	return pp
}

// phaseLabel names a long phase in progress lines.
func phaseLabel(phase string) string {
	if phase == output.PhaseGolden {
		return "golden volume"
	}
	return "image"
}

// Event is a runner Events callback; it ignores all but the image and
// golden phases.
func (pp *phaseProgress) Event(ev output.Event) {
	if ev.Phase != output.PhaseImageBuild && ev.Phase != output.PhaseGolden {
		return
	}
	key := ev.Job + "\x00" + ev.Phase
	label := fmt.Sprintf("[%s] %s", ev.Job, phaseLabel(ev.Phase))
	pp.mu.Lock()
	defer pp.mu.Unlock()
	switch ev.Type {
	case output.EventPhaseStarted:
		if pp.tty == nil {
			return
		}
		p := mpb.New(mpb.WithOutput(pp.tty), mpb.WithWidth(1))
		bar := p.New(0, mpb.SpinnerStyle(),
			mpb.PrependDecorators(decor.Name(label+": ", decor.WC{C: decor.DindentRight})),
			mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO, decor.WCSyncSpace)))
		pp.running[key] = &phaseSpinner{p: p, bar: bar}
	case output.EventPhase:
		if s := pp.running[key]; s != nil {
			delete(pp.running, key)
			s.bar.Abort(true) // the line goes; the one below stays
			s.p.Wait()
		}
		took := (time.Duration(ev.Micros) * time.Microsecond).Round(10 * time.Millisecond)
		switch {
		case ev.Cached && ev.Phase == output.PhaseGolden:
		case ev.Cached:
			fmt.Fprintf(pp.w, "%s: cached\n", label)
		case ev.Phase == output.PhaseGolden:
			fmt.Fprintf(pp.w, "%s: made in %s\n", label, took)
		default:
			fmt.Fprintf(pp.w, "%s: ready in %s\n", label, took)
		}
	}
}
