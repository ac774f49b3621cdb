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
// stint-<job, made safe>-<8 hex digits> (ContainerName): unique, but two
// job names can be the same once made safe (a_b, a-b), so the job's real
// name is kept beside its log, in <container>.job (jobNamePath). Logs of an
// older stint have none: a name finds them by their containers' names
// alone. Long-lived containers' console logs share the directory; their
// names hold a dot (SET.NAME), so the two never meet.

// jobLogRE matches a job's log file name.
var jobLogRE = lazyre.New(`^stint-[A-Za-z0-9-]+-[0-9a-f]{8}\.log$`)

// jobNameRE matches the name of the file naming a job log's job.
var jobNameRE = lazyre.New(`^stint-[A-Za-z0-9-]+-[0-9a-f]{8}\.job$`)

// ErrNoLog: no job log matches the name asked for.
var ErrNoLog = errors.New("no log")

// JobLog is one job's log file.
type JobLog struct {
	Path      string
	Container string
	Modified  time.Time
}

// jobNamePath is where the real name of the job whose log is logPath is
// kept.
func jobNamePath(logPath string) string {
	return strings.TrimSuffix(logPath, ".log") + ".job"
}

// writeJobName records job as the name of the job logging to logPath,
// before the log exists: a log is never found without its name, and a
// name is read only once its log exists, so it needs no temporary file;
// nor an fsync (a lookup aid: a job makes none on its way, issue 16).
func writeJobName(logPath, job string) error {
	if err := os.WriteFile(jobNamePath(logPath), []byte(job+"\n"), 0o600); err != nil {
		return fmt.Errorf("job %s: log name: %w", job, err)
	}
	return nil
}

// JobLog returns the log of a job's container (stint-test-1a2b3c4d), or
// the newest log of job name (test, test[go=1.22]); ErrNoLog if none. A log
// names its job (jobNamePath); one an older stint wrote without its name
// counts only when no log names the job.
func (h *Host) JobLog(name string) (JobLog, error) {
	ents, err := os.ReadDir(h.layout.Logs())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return JobLog{}, fmt.Errorf("job logs %s: %w", h.layout.Logs(), err)
	}
	prefix := "stint-" + containerBase(name) + "-"
	var named, unnamed JobLog
	for _, e := range ents {
		n := e.Name()
		if !jobLogRE.MatchString(n) {
			continue
		}
		ctr := strings.TrimSuffix(n, ".log")
		// Only a container named after the job can be its.
		if ctr != name && (!strings.HasPrefix(n, prefix) || len(n) != len(prefix)+len("12345678.log")) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		p := filepath.Join(h.layout.Logs(), n)
		jl := JobLog{Path: p, Container: ctr, Modified: fi.ModTime()}
		if ctr == name {
			return jl, nil // a container's name is unique
		}
		job, err := os.ReadFile(jobNamePath(p))
		switch {
		case err == nil && strings.TrimSuffix(string(job), "\n") == name:
			named = newerLog(named, jl)
		case errors.Is(err, fs.ErrNotExist):
			unnamed = newerLog(unnamed, jl)
		}
	}
	if named.Path != "" {
		return named, nil
	}
	if unnamed.Path != "" {
		return unnamed, nil
	}
	return JobLog{}, fmt.Errorf("job %s: %w under %s", name, ErrNoLog, h.layout.Logs())
}

// newerLog is the more recently written of best (none: "") and jl.
func newerLog(best, jl JobLog) JobLog {
	if best.Path == "" || jl.Modified.After(best.Modified) {
		return jl
	}
	return best
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
		if err := os.Remove(jobNamePath(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove job log name %s: %w", jobNamePath(p), err))
		}
	}
	errs = append(errs, h.pruneJobNames(ents, cutoff)...)
	return removed, errors.Join(errs...)
}

// pruneJobNames removes, among the log directory's entries ents, the job
// names written before cutoff whose log is gone (a crash between the name
// and the log).
func (h *Host) pruneJobNames(ents []fs.DirEntry, cutoff time.Time) []error {
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() || !jobNameRE.MatchString(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		p := filepath.Join(h.layout.Logs(), e.Name())
		if _, err := os.Lstat(strings.TrimSuffix(p, ".job") + ".log"); !errors.Is(err, fs.ErrNotExist) {
			continue // its log is there (or can't be checked): the log's prune removes it
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove job log name %s: %w", p, err))
		}
	}
	return errs
}
