package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/stintdev/stint/spec"
)

// Watcher defaults.
const (
	DefaultResync     = 30 * time.Second
	DefaultDebounce   = 300 * time.Millisecond
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// terminalError marks an error that retrying cannot fix.
type terminalError struct{ err error }

func (e terminalError) Error() string { return e.err.Error() }
func (e terminalError) Unwrap() error { return e.err }

// Terminal marks err as terminal for the Watcher (controller-runtime's
// reconcile.TerminalError): it is reported once and not retried until the
// spec files change. Wrap an invalid spec with it.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return terminalError{err}
}

// IsTerminal reports whether err was marked with Terminal.
func IsTerminal(err error) bool {
	var t terminalError
	return errors.As(err, &t)
}

// Pass is one reconcile pass of a Watcher, as reported to Watcher.Report.
type Pass struct {
	Triggers []string  `json:"triggers"` // why it ran: start, change:PATH, resync, overflow, retry
	Set      string    `json:"set,omitempty"`
	Actions  []Action  `json:"actions,omitempty"`
	Outcomes []Outcome `json:"outcomes,omitempty"`
	// Err is the pass's failure; Invalid says it is terminal (an invalid
	// spec): nothing was done and nothing is retried until a file changes.
	Err     error         `json:"-"`
	Error   string        `json:"error,omitempty"`
	Invalid bool          `json:"invalid,omitempty"`
	RetryIn time.Duration `json:"retry_in,omitempty"` // when Err is retried
	// Stale says the pass used the last valid spec set because the files
	// are invalid now (a periodic resync repairing drift).
	Stale bool `json:"stale,omitempty"`
}

// Watcher reconciles a spec set continuously: on every change of its spec
// files, on a periodic resync (which catches drift: a container stopped or
// deleted by hand), and on retry after an error.
//
// It watches the directories holding the specs, not the files, because
// editors save by writing a new file and renaming it over the old one,
// which a watch on the old file never sees. Events are debounced per path
// and only mark the set dirty; every pass re-reads the specs (Load) and
// the host (Backend.List) from scratch, so a lost event costs at most one
// resync period. An inotify queue overflow triggers a pass like a change.
//
// Run returns when its context ends (SIGTERM): it stops watching and
// leaves every container as it is.
type Watcher struct {
	// Paths are the spec files and directories given by the user.
	Paths []string
	// Load re-reads the spec set from Paths. An invalid spec must come
	// back marked Terminal.
	Load    func() (*spec.Set, error)
	Backend Backend
	// Parallelism bounds concurrent container operations (default 4).
	Parallelism int
	Resync      time.Duration // default DefaultResync
	Debounce    time.Duration // default DefaultDebounce
	Backoff     time.Duration // first retry delay, doubling; default DefaultBackoff
	MaxBackoff  time.Duration // default DefaultMaxBackoff
	// Report is called after every pass (from one goroutine at a time).
	Report func(Pass)
	Log    *slog.Logger
}

// queue coalesces triggers: any number of adds between two takes make one
// pass, and a pass in progress never loses an add.
type queue struct {
	mu       sync.Mutex
	triggers []string
	files    bool // a spec file changed: re-read the specs
	ch       chan struct{}
}

func newQueue() *queue { return &queue{ch: make(chan struct{}, 1)} }

func (q *queue) add(trigger string, files bool) {
	q.mu.Lock()
	if !slices.Contains(q.triggers, trigger) {
		q.triggers = append(q.triggers, trigger)
	}
	q.files = q.files || files
	q.mu.Unlock()
	select {
	case q.ch <- struct{}{}:
	default:
	}
}

func (q *queue) take() ([]string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, f := q.triggers, q.files
	q.triggers, q.files = nil, false
	return t, f
}

// watchTarget is one directory watched and which of its entries matter.
type watchTarget struct {
	dir   string
	names map[string]bool // exact file names given; nil: every *.toml
}

func (t watchTarget) matches(path string) bool {
	if filepath.Dir(path) != t.dir {
		return false
	}
	base := filepath.Base(path)
	if t.names != nil {
		return t.names[base]
	}
	return strings.HasSuffix(base, ".toml") && !strings.HasPrefix(base, ".")
}

func targets(paths []string) ([]watchTarget, error) {
	byDir := map[string]*watchTarget{}
	var order []string
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		dir, name := abs, ""
		if !fi.IsDir() {
			dir, name = filepath.Dir(abs), filepath.Base(abs)
		}
		t, ok := byDir[dir]
		if !ok {
			t = &watchTarget{dir: dir, names: map[string]bool{}}
			byDir[dir] = t
			order = append(order, dir)
		}
		if name == "" {
			t.names = nil // the whole directory
		} else if t.names != nil {
			t.names[name] = true
		}
	}
	out := make([]watchTarget, 0, len(order))
	for _, d := range order {
		out = append(out, *byDir[d])
	}
	return out, nil
}

func (w *Watcher) defaults() {
	w.Parallelism = max(w.Parallelism, 1)
	if w.Resync <= 0 {
		w.Resync = DefaultResync
	}
	if w.Debounce <= 0 {
		w.Debounce = DefaultDebounce
	}
	if w.Backoff <= 0 {
		w.Backoff = DefaultBackoff
	}
	if w.MaxBackoff <= 0 {
		w.MaxBackoff = DefaultMaxBackoff
	}
	if w.Log == nil {
		w.Log = slog.Default()
	}
	if w.Report == nil {
		w.Report = func(Pass) {}
	}
}

// Run watches and reconciles until ctx ends; it returns nil then. It fails
// early only when the paths cannot be watched.
func (w *Watcher) Run(ctx context.Context) error {
	w.defaults()
	tgts, err := targets(w.Paths)
	if err != nil {
		return err
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch specs: %w", err)
	}
	defer fsw.Close()
	for _, t := range tgts {
		if err := fsw.Add(t.dir); err != nil {
			return fmt.Errorf("watch directory %s: %w", t.dir, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := newQueue()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); w.events(ctx, fsw, tgts, q) }()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(w.Resync)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				q.add("resync", false)
			}
		}
	}()
	q.add("start", true)
	w.work(ctx, q)
	cancel()
	wg.Wait()
	return nil
}

// events turns fsnotify events into debounced queue adds.
func (w *Watcher) events(ctx context.Context, fsw *fsnotify.Watcher, tgts []watchTarget, q *queue) {
	timers := map[string]*time.Timer{}
	defer func() {
		for _, t := range timers {
			t.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fsw.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || !slices.ContainsFunc(tgts, func(t watchTarget) bool { return t.matches(ev.Name) }) {
				continue
			}
			path := ev.Name
			if t, ok := timers[path]; ok {
				t.Reset(w.Debounce)
				continue
			}
			timers[path] = time.AfterFunc(w.Debounce, func() { q.add("change:"+path, true) })
		case err, ok := <-fsw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				q.add("overflow", true)
				continue
			}
			w.Log.Warn("watching specs", "err", err)
		}
	}
}

// work runs passes as the queue asks, with backoff after errors.
func (w *Watcher) work(ctx context.Context, q *queue) {
	var (
		lastGood *spec.Set
		invalid  bool // the files are invalid; don't re-read until they change
		backoff  time.Duration
		retry    *time.Timer
	)
	for {
		select {
		case <-ctx.Done():
			if retry != nil {
				retry.Stop()
			}
			return
		case <-q.ch:
		}
		if retry != nil {
			retry.Stop()
		}
		triggers, files := q.take()
		p := Pass{Triggers: triggers}
		set := lastGood
		if files || (lastGood == nil && !invalid) {
			s, err := w.Load()
			switch {
			case err != nil && IsTerminal(err):
				invalid = true
				p.Err, p.Invalid = err, true
				w.report(p)
				continue // no retry until the files change
			case err != nil:
				p.Err = fmt.Errorf("load specs: %w", err)
				backoff = w.next(backoff)
				p.RetryIn = backoff
				retry = time.AfterFunc(backoff, func() { q.add("retry", true) })
				w.report(p)
				continue
			}
			set, lastGood, invalid = s, s, false
		}
		if set == nil {
			continue // still invalid, and never valid yet: nothing to keep
		}
		p.Set, p.Stale = set.Name, invalid
		if u, ok := w.Backend.(SetUser); ok {
			u.UseSet(set)
		}
		p.Actions, p.Outcomes, p.Err = Once(ctx, w.Backend, set.Name, set.Containers, w.Parallelism)
		if ctx.Err() != nil {
			return // stopping: an interrupted pass is not worth reporting as failed
		}
		if p.Err != nil {
			backoff = w.next(backoff)
			p.RetryIn = backoff
			retry = time.AfterFunc(backoff, func() { q.add("retry", false) })
		} else {
			backoff = 0
		}
		w.report(p)
	}
}

func (w *Watcher) next(cur time.Duration) time.Duration {
	if cur == 0 {
		return w.Backoff
	}
	return min(cur*2, w.MaxBackoff)
}

func (w *Watcher) report(p Pass) {
	if p.Err != nil {
		p.Error = p.Err.Error()
	}
	w.Report(p)
}

// LoadSpecs loads the spec set at paths for a pass, marking an invalid
// spec (spec.Errors: problems with file:line) Terminal, so that a Watcher
// reports it once and waits for the files to change.
func LoadSpecs(paths []string, opts spec.Options) (*spec.Set, error) {
	s, err := spec.Load(paths, opts)
	var invalid *spec.Errors
	if errors.As(err, &invalid) {
		return nil, Terminal(err)
	}
	return s, err
}
