package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/lazyre"
	"github.com/stintdev/stint/runner/state"
)

// Job logs are <root>/logs/<container>.log, the container being
// stint-<job, made safe>-<8 hex digits> (ContainerName). Long-lived
// containers' console logs share the directory; their names hold a dot
// (SET.NAME), so the two never meet.

// jobLogRE matches a job's log file name.
var jobLogRE = lazyre.New(`^stint-[A-Za-z0-9-]+-[0-9a-f]{8}\.log$`)

// ErrNoLog: no job log matches the name asked for.
var ErrNoLog = errors.New("no log")

// JobLog is one job's log file.
type JobLog struct {
	Path      string
	Container string
	Modified  time.Time
}

// JobLog returns the log of a job's container (stint-test-1a2b3c4d), or
// the newest log of job name (test, test[go=1.22]); ErrNoLog if none.
// Two job names that are the same once made safe (a_b, a-b) share their
// logs' names: the newest of either is returned.
func (h *Host) JobLog(name string) (JobLog, error) {
	ents, err := os.ReadDir(h.layout.Logs())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return JobLog{}, fmt.Errorf("job logs %s: %w", h.layout.Logs(), err)
	}
	prefix := "stint-" + containerBase(name) + "-"
	var best JobLog
	for _, e := range ents {
		n := e.Name()
		if !jobLogRE.MatchString(n) {
			continue
		}
		ctr := strings.TrimSuffix(n, ".log")
		if ctr != name && (!strings.HasPrefix(n, prefix) || len(n) != len(prefix)+len("12345678.log")) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if best.Path == "" || fi.ModTime().After(best.Modified) || ctr == name {
			best = JobLog{Path: filepath.Join(h.layout.Logs(), n), Container: ctr, Modified: fi.ModTime()}
		}
		if ctr == name {
			break
		}
	}
	if best.Path == "" {
		return JobLog{}, fmt.Errorf("job %s: %w under %s", name, ErrNoLog, h.layout.Logs())
	}
	return best, nil
}

// JobRunning reports whether the job of container ctr still runs: its
// record is there, not kept, and its owning stint process lives. A log
// follower stops once it is false.
func (h *Host) JobRunning(ctr string) bool {
	st, err := h.state()
	if err != nil {
		return false
	}
	r, err := st.Get(ctr)
	if err != nil || r.Kept || r.Kind == state.KindContainer || r.Phase == state.PhaseCorrupt {
		return false
	}
	return r.Owner > 0 && unix.Kill(r.Owner, 0) != unix.ESRCH
}

// PruneLogs removes the job logs last written before cutoff, except those
// of containers that still have a record (a running or kept job). It
// returns the paths removed; a file it could not remove is an error
// naming it, after the others are done.
func (h *Host) PruneLogs(cutoff time.Time) ([]string, error) {
	ents, err := os.ReadDir(h.layout.Logs())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("job logs %s: %w", h.layout.Logs(), err)
	}
	st, err := h.state()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() || !jobLogRE.MatchString(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		if _, err := st.Get(strings.TrimSuffix(e.Name(), ".log")); !errors.Is(err, state.ErrNotFound) {
			continue // its job still runs or was kept (or its record can't be read: keep it)
		}
		p := filepath.Join(h.layout.Logs(), e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove job log %s: %w", p, err))
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}
