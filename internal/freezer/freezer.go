// Package freezer freezes and thaws every process of a cgroup by writing
// the kernel's freezer files directly, waiting with a short, bounded
// back-off.
//
// Why not liblxc's freeze: on cgroup v1 it writes FROZEN, and whenever the
// first read says FREEZING (some task not yet in the refrigerator, which is
// common right after a job's last line) it sleeps one whole second before
// reading again; a job's artifacts then wait a second for nothing. Here the
// state is re-read after 0, 50 µs, 100 µs, ... (doubling, at most 5 ms
// apart), rewriting FROZEN each time so the kernel retries the stragglers,
// and the wait ends with an error after Timeout, never later.
//
// cgroup v1: <freezer hierarchy>/<cgroup>/freezer.state, written FROZEN or
// THAWED, read back FREEZING until every task is frozen. cgroup v2:
// <cgroup>/cgroup.freeze, written 1 or 0; cgroup.events says "frozen 1"
// once every task is frozen. Both freeze the cgroup's descendants too.
package freezer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultTimeout bounds a freeze or thaw that the kernel doesn't finish.
const DefaultTimeout = 2 * time.Second

// ErrTimeout means the cgroup did not reach the state within the timeout.
var ErrTimeout = errors.New("freezer state not reached in time")

// Error is a freezer operation that failed, naming the cgroup.
type Error struct {
	Op   string // "freeze" | "thaw"
	Dir  string // the cgroup's directory
	Last string // the last state read ("FREEZING", "frozen 0", ...), if any
	Err  error
}

func (e *Error) Error() string {
	if e.Last != "" {
		return fmt.Sprintf("%s cgroup %s (last state %q): %v", e.Op, e.Dir, e.Last, e.Err)
	}
	return fmt.Sprintf("%s cgroup %s: %v", e.Op, e.Dir, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Freezer freezes one cgroup.
type Freezer struct {
	dir string
	v2  bool
	// Timeout bounds Freeze and Thaw (DefaultTimeout when zero); a
	// context's deadline, when sooner, wins.
	Timeout time.Duration
	// sleep and now are time's; tests count the waits on a fake clock.
	sleep func(time.Duration)
	now   func() time.Time
}

// New returns the freezer of the cgroup at dir: a v1 freezer cgroup when
// dir has freezer.state, a v2 cgroup when it has cgroup.freeze.
func New(dir string) (*Freezer, error) {
	f := &Freezer{dir: dir, sleep: time.Sleep, now: time.Now}
	if _, err := os.Stat(filepath.Join(dir, "freezer.state")); err == nil {
		return f, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.freeze")); err == nil {
		f.v2 = true
		return f, nil
	}
	return nil, &Error{Op: "open", Dir: dir, Err: errors.New("neither freezer.state (v1) nor cgroup.freeze (v2) is there")}
}

// Dir is the cgroup's directory.
func (f *Freezer) Dir() string { return f.dir }

// V2 reports whether the cgroup is a cgroup v2 one.
func (f *Freezer) V2() bool { return f.v2 }

// Freeze freezes every process of the cgroup and its descendants, and
// returns once all are frozen.
func (f *Freezer) Freeze(ctx context.Context) error {
	if f.v2 {
		return f.change(ctx, "freeze", "cgroup.freeze", "1", f.v2Frozen(true))
	}
	return f.change(ctx, "freeze", "freezer.state", "FROZEN", f.v1State("FROZEN"))
}

// Thaw thaws the cgroup, and returns once it is thawed.
func (f *Freezer) Thaw(ctx context.Context) error {
	if f.v2 {
		return f.change(ctx, "thaw", "cgroup.freeze", "0", f.v2Frozen(false))
	}
	return f.change(ctx, "thaw", "freezer.state", "THAWED", f.v1State("THAWED"))
}

// Frozen reports whether the cgroup is frozen now (v1: FROZEN, not
// FREEZING; v2: "frozen 1" in cgroup.events).
func (f *Freezer) Frozen() (bool, error) {
	if f.v2 {
		ok, _, err := f.v2Frozen(true)()
		return ok, err
	}
	ok, _, err := f.v1State("FROZEN")()
	return ok, err
}

// check reads the state: whether it is the wanted one, and what was read.
type check func() (bool, string, error)

func (f *Freezer) v1State(want string) check {
	return func() (bool, string, error) {
		b, err := os.ReadFile(filepath.Join(f.dir, "freezer.state"))
		if err != nil {
			return false, "", err
		}
		s := strings.TrimSpace(string(b))
		return s == want, s, nil
	}
}

func (f *Freezer) v2Frozen(want bool) check {
	return func() (bool, string, error) {
		fh, err := os.Open(filepath.Join(f.dir, "cgroup.events"))
		if err != nil {
			return false, "", err
		}
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "frozen "); ok {
				return (v == "1") == want, sc.Text(), nil
			}
		}
		if err := sc.Err(); err != nil {
			return false, "", err
		}
		return false, "", errors.New("cgroup.events has no frozen line (kernel before 5.2?)")
	}
}

// change writes value to file and re-reads with the back-off until done
// says the state is reached. On v1, FROZEN is written again before each
// re-read: the kernel then retries the tasks that were not frozen yet.
func (f *Freezer) change(ctx context.Context, op, file, value string, done check) error {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := f.now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	path := filepath.Join(f.dir, file)
	last := ""
	for i := 0; ; i++ {
		if i == 0 || (!f.v2 && value == "FROZEN") {
			if err := os.WriteFile(path, []byte(value), 0); err != nil {
				return &Error{Op: op, Dir: f.dir, Last: last, Err: err}
			}
		}
		ok, state, err := done()
		if err != nil {
			return &Error{Op: op, Dir: f.dir, Last: last, Err: err}
		}
		if ok {
			return nil
		}
		last = state
		if err := ctx.Err(); err != nil {
			return &Error{Op: op, Dir: f.dir, Last: last, Err: err}
		}
		wait := Backoff(i)
		if f.now().Add(wait).After(deadline) {
			return &Error{Op: op, Dir: f.dir, Last: last, Err: fmt.Errorf("%w (%v)", ErrTimeout, timeout)}
		}
		f.sleep(wait)
	}
}

// Backoff is the wait before the re-read after the i-th (from 0): 0, then
// 50 µs doubling up to 5 ms.
func Backoff(i int) time.Duration {
	if i <= 0 {
		return 0
	}
	d := 50 * time.Microsecond << min(i-1, 7)
	return min(d, 5*time.Millisecond)
}
