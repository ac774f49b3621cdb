package gitlab

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeEngine is an Engine in memory: images and remotes as configured,
// containers as a set of names, every call logged.
type fakeEngine struct {
	mu         sync.Mutex
	remotes    []string
	images     map[string]bool
	live       map[string]JobContainer
	calls      []string
	execs      []Exec
	execCode   int
	execErr    error
	prepareErr error
	cleanupErr error
	commits    map[string]Outcome
}

func newFake() *fakeEngine {
	return &fakeEngine{
		remotes: []string{"hub", "images"},
		images:  map[string]bool{"busybox": true, "debian": true, "0123456789ab": true},
		live:    map[string]JobContainer{},
		commits: map[string]Outcome{},
	}
}

func (f *fakeEngine) log(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeEngine) Remotes(context.Context) ([]string, error) { return f.remotes, nil }

func (f *fakeEngine) HasImage(_ context.Context, ref string) (bool, error) { return f.images[ref], nil }

func (f *fakeEngine) Prepare(_ context.Context, job JobContainer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log("prepare %s %s", job.Name, job.Image)
	f.live[job.Name] = job
	return f.prepareErr
}

func (f *fakeEngine) Exec(_ context.Context, name string, x Exec) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log("exec %s %s", name, x.Path)
	if _, ok := f.live[name]; !ok {
		return -1, fmt.Errorf("container %s: not running", name)
	}
	f.execs = append(f.execs, x)
	if f.execErr == nil {
		_, _ = io.WriteString(x.Stdout, "out\n")
	}
	return f.execCode, f.execErr
}

func (f *fakeEngine) Cleanup(_ context.Context, job JobContainer, outcome Outcome) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log("cleanup %s outcome=%s", job.Name, outcome)
	if f.cleanupErr != nil {
		return f.cleanupErr
	}
	delete(f.live, job.Name)
	f.commits[job.Name] = outcome
	return nil
}

// fakeProcFS builds a procfs under a temp dir with one stat file per
// process (pid, ppid, pgrp, start), an environ file, and "self" standing
// for the first.
type proc struct {
	pid, ppid, pgrp int
	start           uint64
	env             []string
}

func fakeProcFS(t *testing.T, procs ...proc) ProcFS {
	t.Helper()
	dir := t.TempDir()
	for i, p := range procs {
		stat := fmt.Sprintf("%d (a) b) S %d %d 0 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 %d 1000 10\n",
			p.pid, p.ppid, p.pgrp, p.start)
		names := []string{strconv.Itoa(p.pid)}
		if i == 0 {
			names = append(names, "self")
		}
		for _, n := range names {
			if err := os.MkdirAll(filepath.Join(dir, n), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, n, "stat"), []byte(stat), 0o644); err != nil {
				t.Fatal(err)
			}
			env := strings.Join(p.env, "\x00")
			if err := os.WriteFile(filepath.Join(dir, n, "environ"), []byte(env), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	boot := filepath.Join(dir, "sys/kernel/random")
	_ = os.MkdirAll(boot, 0o755)
	_ = os.WriteFile(filepath.Join(boot, "boot_id"), []byte("boot-1\n"), 0o644)
	return ProcFS(dir)
}
