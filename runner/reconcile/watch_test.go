package reconcile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/spec"
)

// miniLoad is a stand-in for spec.Load in these pure-logic tests: every
// *.toml file in dir lists container names one per line; a line INVALID
// makes the set invalid (terminal), a line IOERROR a retryable failure.
func miniLoad(dir string, loads *atomic.Int32) func() (*spec.Set, error) {
	return func() (*spec.Set, error) {
		loads.Add(1)
		files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
		if err != nil {
			return nil, err
		}
		set := &spec.Set{Name: "w"}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				switch line {
				case "":
				case "INVALID":
					return nil, Terminal(errors.New(f + ":" + strconv.Itoa(i+1) + ": invalid"))
				case "IOERROR":
					return nil, errors.New("disk on fire")
				default:
					set.Containers = append(set.Containers, spec.Container{Name: line, Image: "busybox", State: spec.StateRunning})
				}
			}
		}
		return set, nil
	}
}

// changed reports whether p ran because a spec file changed.
func changed(p Pass) bool {
	return slices.ContainsFunc(p.Triggers, func(s string) bool { return strings.HasPrefix(s, "change:") })
}

type watchFixture struct {
	dir    string
	b      *fakeBackend
	loads  atomic.Int32
	passes chan Pass
	done   chan error
	cancel context.CancelFunc
}

func startWatch(t *testing.T, initial string, tune func(*Watcher)) *watchFixture {
	t.Helper()
	f := &watchFixture{dir: t.TempDir(), b: newFake(), passes: make(chan Pass, 100), done: make(chan error, 1)}
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "a.toml"), []byte(initial), 0o644))
	w := &Watcher{
		Paths: []string{f.dir}, Load: miniLoad(f.dir, &f.loads), Backend: f.b,
		Resync: time.Hour, Debounce: 100 * time.Millisecond, Backoff: 50 * time.Millisecond,
		Report: func(p Pass) { f.passes <- p },
	}
	if tune != nil {
		tune(w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.done:
		case <-time.After(5 * time.Second):
			t.Error("watcher did not stop")
		}
	})
	return f
}

func (f *watchFixture) next(t *testing.T) Pass {
	t.Helper()
	select {
	case p := <-f.passes:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no reconcile pass within 5s")
		return Pass{}
	}
}

// quiet asserts that no pass runs for d.
func (f *watchFixture) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case p := <-f.passes:
		t.Fatalf("unexpected pass: %+v", p)
	case <-time.After(d):
	}
}

func (f *watchFixture) write(t *testing.T, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, name), []byte(content), 0o644))
}

func TestWatchDebouncesBursts(t *testing.T) {
	// A wide window, so that a loaded machine's slow writes stay inside it.
	f := startWatch(t, "web\n", func(w *Watcher) { w.Debounce = 400 * time.Millisecond })
	p := f.next(t)
	assert.Equal(t, []string{"start"}, p.Triggers)
	assert.Equal(t, StatusRunning, f.b.status("w", "web"))

	for i := range 10 { // an editor writing in pieces
		f.write(t, "a.toml", "web\n"+strings.Repeat("\n", i))
		time.Sleep(10 * time.Millisecond)
	}
	p = f.next(t)
	assert.Equal(t, []string{"change:" + filepath.Join(f.dir, "a.toml")}, p.Triggers)
	f.quiet(t, 800*time.Millisecond)
	assert.Equal(t, int32(2), f.loads.Load(), "ten writes within the debounce window make one reload")
}

func TestWatchSeesSaveByRenameAndIgnoresOtherFiles(t *testing.T) {
	f := startWatch(t, "web\n", nil)
	f.next(t)

	f.write(t, "notes.txt", "db\n")
	f.write(t, ".a.toml.swp", "db\n")
	f.quiet(t, 400*time.Millisecond)

	// What vim and most editors do: write a new file, rename it over.
	f.write(t, ".a.toml.tmp", "web\ndb\n")
	require.NoError(t, os.Rename(filepath.Join(f.dir, ".a.toml.tmp"), filepath.Join(f.dir, "a.toml")))
	p := f.next(t)
	require.NoError(t, p.Err)
	assert.Equal(t, StatusRunning, f.b.status("w", "db"))

	require.NoError(t, os.Remove(filepath.Join(f.dir, "a.toml")))
	f.write(t, "b.toml", "db\n") // a new file in the directory counts too
	p = f.next(t)
	require.NoError(t, p.Err)
	if f.b.status("w", "web") != "" { // two debounced paths may make two passes
		f.next(t)
	}
	assert.Equal(t, Status(""), f.b.status("w", "web"), "removed from the specs: deleted")
	assert.Equal(t, StatusRunning, f.b.status("w", "db"))
}

func TestWatchInvalidSpecTearsNothingDownAndIsNotRetried(t *testing.T) {
	f := startWatch(t, "web\ndb\n", func(w *Watcher) { w.Resync = 100 * time.Millisecond })
	f.next(t)
	f.b.ResetCalls()

	f.write(t, "a.toml", "web\nINVALID\n")
	var p Pass
	for p = f.next(t); !p.Invalid; p = f.next(t) {
		require.NoError(t, p.Err) // resyncs before the change was seen
	}
	assert.Contains(t, p.Error, filepath.Join(f.dir, "a.toml")+":2: invalid", "reported with file:line")
	assert.Zero(t, p.RetryIn)
	loads := f.loads.Load()

	// Resyncs go on with the last valid set (drift repair), never re-reading
	// the invalid files, never tearing anything down.
	f.b.put("w", "db", StatusStopped)
	for range 3 {
		p = f.next(t)
		assert.True(t, p.Stale)
		assert.NoError(t, p.Err)
	}
	assert.Equal(t, loads, f.loads.Load(), "no retry until the files change")
	assert.Equal(t, StatusRunning, f.b.status("w", "web"))
	assert.Equal(t, StatusRunning, f.b.status("w", "db"), "drift repaired from the last valid set")
	assert.Equal(t, []string{"start w/db"}, f.b.Calls())

	f.write(t, "a.toml", "web\n")
	for p = f.next(t); !changed(p); p = f.next(t) {
	}
	require.NoError(t, p.Err)
	assert.Equal(t, Status(""), f.b.status("w", "db"), "valid again: applied")
}

func TestWatchInvalidAtStartDoesNothing(t *testing.T) {
	f := startWatch(t, "INVALID\n", func(w *Watcher) { w.Resync = 50 * time.Millisecond })
	p := f.next(t)
	assert.True(t, p.Invalid)
	f.quiet(t, 300*time.Millisecond) // resyncs have no set to apply and don't re-read
	assert.Equal(t, int32(1), f.loads.Load())
	assert.Empty(t, f.b.Calls())
}

func TestWatchResyncRepairsDrift(t *testing.T) {
	f := startWatch(t, "web\ndb\n", func(w *Watcher) { w.Resync = 150 * time.Millisecond })
	f.next(t)
	f.b.put("w", "web", StatusStopped) // lxc-stop by hand
	f.b.put("w", "db", StatusMissing)  // lxc-destroy by hand
	deadline := time.Now().Add(2 * 150 * time.Millisecond)
	for f.b.status("w", "web") != StatusRunning || f.b.status("w", "db") != StatusRunning {
		p := f.next(t)
		require.NoError(t, p.Err)
	}
	assert.True(t, time.Now().Before(deadline.Add(300*time.Millisecond)), "repaired within two resync periods (and a scheduling margin)")
}

func TestWatchRetriesWithBackoff(t *testing.T) {
	f := startWatch(t, "web\n", func(w *Watcher) {
		w.Backend.(*fakeBackend).failOn["web"] = errors.New("lxc busy") // before the first pass
	})
	var delays []time.Duration
	for range 3 {
		p := f.next(t)
		require.Error(t, p.Err)
		assert.Contains(t, p.Error, "container w/web: create: lxc busy")
		delays = append(delays, p.RetryIn)
	}
	assert.Equal(t, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}, delays)
	f.b.mu.Lock()
	delete(f.b.failOn, "web")
	f.b.mu.Unlock()
	p := f.next(t)
	require.NoError(t, p.Err)
	assert.Equal(t, []string{"retry"}, p.Triggers)
	assert.Equal(t, StatusRunning, f.b.status("w", "web"))
}

func TestWatchRetriesLoadErrors(t *testing.T) {
	f := startWatch(t, "IOERROR\n", nil)
	p := f.next(t)
	require.Error(t, p.Err)
	assert.False(t, p.Invalid)
	assert.Equal(t, 50*time.Millisecond, p.RetryIn)
	p = f.next(t)
	assert.Equal(t, []string{"retry"}, p.Triggers)
	assert.Equal(t, int32(2), f.loads.Load(), "a retryable load error re-reads the files")
}

func TestWatchStopLeavesContainersRunning(t *testing.T) {
	f := startWatch(t, "web\n", nil)
	f.next(t)
	f.cancel()
	select {
	case err := <-f.done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("watcher did not stop")
	}
	f.done <- nil // for the cleanup
	assert.Equal(t, StatusRunning, f.b.status("w", "web"))
	assert.NotContains(t, f.b.Calls(), "stop w/web")
	assert.NotContains(t, f.b.Calls(), "destroy w/web")
}

func TestWatchSingleFileWatchesOnlyIt(t *testing.T) {
	dir := t.TempDir()
	spec1 := filepath.Join(dir, "one.toml")
	require.NoError(t, os.WriteFile(spec1, []byte("x"), 0o644))
	tg, err := targets([]string{spec1})
	require.NoError(t, err)
	require.Len(t, tg, 1)
	assert.True(t, tg[0].matches(spec1))
	assert.False(t, tg[0].matches(filepath.Join(dir, "two.toml")))
	tg, err = targets([]string{spec1, dir})
	require.NoError(t, err)
	assert.True(t, tg[0].matches(filepath.Join(dir, "two.toml")), "a directory argument widens a file argument")
	_, err = targets([]string{filepath.Join(dir, "missing")})
	assert.Error(t, err)
}
