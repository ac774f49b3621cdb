package lxcrt

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/runner/container"
)

// Moving a process into a cgroup (a write to cgroup.procs) takes the
// kernel's cgroup_threadgroup_rwsem for writing. That per-CPU rwsem is made
// ready for a writer by waiting for an RCU grace period, unless a writer
// used it within about the last grace period or the hierarchy is mounted
// with favordynmods (off by default: CONFIG_CGROUP_FAVOR_DYNMODS unset).
// liblxc's monitor moves itself into its cgroups first thing in every
// start, so every start waited one grace period: 6-18 ms of a 40 ms
// trivial job on the development VM (2 cores, HZ=250, cgroup v1), the
// largest single wait in it, and one LXC's own sequence pays too.
//
// Prime pays it early and in the background: while a start is being
// prepared (the command line, the record, the clone, the config: see
// runner.PrimeStarts and the launch's own hold), a goroutine moves stint
// into the cgroup it is already in, a move that changes nothing, every few
// milliseconds; the monitor's move then finds the rwsem ready and costs
// microseconds. bench/RESULTS.md has the figures.

// warmEvery is the interval between two warming writes: well inside the
// ~12 ms after a write during which the next one is still fast.
const warmEvery = 4 * time.Millisecond

// warmer is the process's one warming goroutine (the rwsem is host-wide).
var warmer = &cgroupWarmer{}

type cgroupWarmer struct {
	mu      sync.Mutex
	holds   int
	running bool
}

// Prime readies a start about to happen of a container with PID 1 init
// and returns at once: it starts warming the cgroup migration lock, and
// for a start on the fast path it spawns the container's monitor
// (monitor.go). release (idempotent) ends this caller's hold: warming
// stops when no hold is left. Best effort: a host where stint can't write
// its own cgroup.procs gets no warming, and no error.
func (r *Runtime) Prime(init container.Init) (release func()) {
	if r.host.Agent != "" && init.Kinded() == container.InitMinimal {
		r.monitors.prepare(r.self)
	}
	return warmer.hold()
}

// PrimeFor is Prime for d, from a caller that will start containers soon
// but not yet know which (a Host opening its engine): the earlier the
// first write, the more of its wait is hidden.
func PrimeFor(d time.Duration) {
	time.AfterFunc(d, warmer.hold())
}

func (w *cgroupWarmer) hold() func() {
	w.mu.Lock()
	w.holds++
	if !w.running {
		w.running = true
		go w.loop()
	}
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			w.holds--
			w.mu.Unlock()
		})
	}
}

// loop writes this process's pid into its own cgroup until no hold is
// left; the first write waits out the grace period, the later ones keep
// the lock ready.
func (w *cgroupWarmer) loop() {
	pid := []byte(strconv.Itoa(os.Getpid()))
	for {
		// The cgroup read again each time: a process that moved stint
		// meanwhile (a service manager) is not undone a moment later.
		f := openOwnProcs()
		if f != nil {
			_, _ = f.Write(pid)
			f.Close()
		}
		w.mu.Lock()
		if w.holds == 0 || f == nil {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		time.Sleep(warmEvery)
	}
}

// openOwnProcs opens, for writing, the cgroup.procs file of the cgroup this
// process is in: in a cgroup v1 hierarchy when there is one (a move there
// is a no-op for every thread of the process), else in the cgroup2
// hierarchy when that cgroup is a plain domain (in a threaded one, threads
// may sit in other cgroups, and the write would gather them). nil if none.
func openOwnProcs() *os.File {
	own, err := ownCgroups()
	if err != nil {
		return nil
	}
	var candidates []string
	for _, c := range []string{"pids", "cpu", "memory", "name=systemd"} {
		if p, ok := own[c]; ok {
			candidates = append(candidates, filepath.Join(cgroupRoot, strings.TrimPrefix(c, "name="), p))
		}
	}
	if p, ok := own[""]; ok {
		for _, root := range []string{filepath.Join(cgroupRoot, "unified"), cgroupRoot} {
			dir := filepath.Join(root, p)
			t, err := os.ReadFile(filepath.Join(dir, "cgroup.type"))
			// The root cgroup has no cgroup.type (and is a domain).
			if (err == nil && strings.TrimSpace(string(t)) == "domain") || (p == "/" && os.IsNotExist(err)) {
				candidates = append(candidates, dir)
			}
		}
	}
	for _, dir := range candidates {
		f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			return f
		}
	}
	return nil
}
