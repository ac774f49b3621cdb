package gitlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/renameio/v2"
)

// Record is what `prepare` leaves for the later calls of one job, and for
// `stint gc`: between two runner calls no stint process holds the job, so
// the record says who does: the runner process that called prepare.
type Record struct {
	Job     JobContainer `json:"job"`
	Runner  Process      `json:"runner"`
	Created time.Time    `json:"created"`
	// Failed is set when a stage that decides the job's status failed; Passed
	// when the user's script (build_script) ran to exit 0. The caches commit
	// at cleanup only for Passed && !Failed.
	Failed bool `json:"failed,omitempty"`
	Passed bool `json:"passed,omitempty"`
}

// Succeeded reports whether the job passed as far as the driver saw.
func (r Record) Succeeded() bool { return r.Passed && !r.Failed }

// Process identifies a process across pid reuse: its pid, its start time in
// clock ticks after boot (field 22 of /proc/PID/stat) and the boot it ran in.
type Process struct {
	PID    int    `json:"pid"`
	Start  uint64 `json:"start"`
	BootID string `json:"boot_id"`
}

// ProcFS is a procfs mount point, "/proc" on a host; tests point it at a
// directory of fake stat files.
type ProcFS string

// HostProc is the host's procfs.
const HostProc ProcFS = "/proc"

// stat is the part of /proc/PID/stat the driver uses.
type stat struct {
	ppid, pgrp int
	start      uint64
}

func (p ProcFS) stat(pid string) (stat, error) {
	data, err := os.ReadFile(filepath.Join(string(p), pid, "stat"))
	if err != nil {
		return stat{}, fmt.Errorf("read process %s: %w", pid, err)
	}
	// The command (field 2) is in parentheses and may hold anything, ')' too.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("process %s: malformed stat %q", pid, s)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return stat{}, fmt.Errorf("process %s: short stat %q", pid, s)
	}
	var st stat
	var errs [3]error
	st.ppid, errs[0] = strconv.Atoi(f[1])                // field 4
	st.pgrp, errs[1] = strconv.Atoi(f[2])                // field 5
	st.start, errs[2] = strconv.ParseUint(f[19], 10, 64) // field 22
	if err := errors.Join(errs[:]...); err != nil {
		return stat{}, fmt.Errorf("process %s: stat: %w", pid, err)
	}
	return st, nil
}

func (p ProcFS) bootID() string {
	b, _ := os.ReadFile(filepath.Join(string(p), "sys/kernel/random/boot_id"))
	return strings.TrimSpace(string(b))
}

// Process returns pid's identity.
func (p ProcFS) Process(pid int) (Process, error) {
	st, err := p.stat(strconv.Itoa(pid))
	if err != nil {
		return Process{}, err
	}
	return Process{PID: pid, Start: st.start, BootID: p.bootID()}, nil
}

// Runner returns the runner process that called this driver. The runner
// sets JOB_RESPONSE_FILE (a path unique to the job) for its driver calls
// only, so the runner is the nearest ancestor whose environment lacks
// JOB_RESPONSE_FILE=marker: a wrapper script, sudo and sudo's pty monitor,
// which inherit it, are passed over. With no marker (an environment that
// dropped it), or no readable ancestor lacking it, the runner is the parent
// of this process group's leader: the runner starts each call in a process
// group of its own.
func (p ProcFS) Runner(marker string) (Process, error) {
	self, err := p.stat("self")
	if err != nil {
		return Process{}, err
	}
	if marker != "" {
		want := EnvJobResponseFile + "=" + marker
		pid := self.ppid
		for range 16 {
			env, err := os.ReadFile(filepath.Join(string(p), strconv.Itoa(pid), "environ"))
			if err != nil || pid <= 1 {
				break
			}
			if !slices.Contains(strings.Split(string(env), "\x00"), want) {
				return p.Process(pid)
			}
			st, err := p.stat(strconv.Itoa(pid))
			if err != nil {
				break
			}
			pid = st.ppid
		}
	}
	parent := self.ppid
	if leader, err := p.stat(strconv.Itoa(self.pgrp)); err == nil {
		parent = leader.ppid
	}
	return p.Process(parent)
}

// Alive reports whether the process rec names still runs: the same pid,
// started at the same tick, in the same boot. A record without a runner
// (pid 0) is not alive.
func (p ProcFS) Alive(rec Record) bool {
	if rec.Runner.PID <= 0 {
		return false
	}
	now, err := p.Process(rec.Runner.PID)
	if err != nil {
		return false
	}
	return now.Start == rec.Runner.Start && (rec.Runner.BootID == "" || now.BootID == rec.Runner.BootID)
}

// Alive is HostProc.Alive: whether the runner that prepared rec's job lives.
// `stint gc` leaves a prepared job alone while it does.
func Alive(rec Record) bool { return HostProc.Alive(rec) }

// Records is the directory holding one JSON record per prepared job,
// <name>.json, each written atomically (temp file, fsync, rename).
type Records struct{ Dir string }

// ErrNoRecord is returned by Read for a job with no record.
var ErrNoRecord = errors.New("no job record")

func (rs Records) path(name string) string { return filepath.Join(rs.Dir, name+".json") }

// lock takes the directory's lock (flock on .lock), which every change of
// a record holds: a `run` call that outlived its runner must not write back
// a record that gc removed meanwhile.
// Only Write makes the directory: an Update or Remove after gc removed it
// (the test's temp dir, a root) must not make it again.
func (rs Records) lock(create bool) (unlock func(), err error) {
	if create {
		if err := os.MkdirAll(rs.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("job records %s: %w", rs.Dir, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(rs.Dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("job records %s: %w", rs.Dir, ErrNoRecord)
	}
	if err != nil {
		return nil, fmt.Errorf("job records lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("job records lock: %w", err)
	}
	return func() { _ = f.Close() }, nil
}

// Write stores rec under its job's name, replacing any older record.
func (rs Records) Write(rec Record) error {
	unlock, err := rs.lock(true)
	if err != nil {
		return err
	}
	defer unlock()
	return rs.write(rec)
}

// Update changes name's record with mut, if it still exists (an error
// wrapping ErrNoRecord if not).
func (rs Records) Update(name string, mut func(*Record)) error {
	unlock, err := rs.lock(false)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := rs.Read(name)
	if err != nil {
		return err
	}
	mut(&rec)
	return rs.write(rec)
}

func (rs Records) write(rec Record) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode job record %s: %w", rec.Job.Name, err)
	}
	if err := renameio.WriteFile(rs.path(rec.Job.Name), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write job record %s: %w", rec.Job.Name, err)
	}
	return nil
}

// Read returns name's record; an error wrapping ErrNoRecord if there is none.
func (rs Records) Read(name string) (Record, error) {
	data, err := os.ReadFile(rs.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, fmt.Errorf("job %s: %w", name, ErrNoRecord)
	}
	if err != nil {
		return Record{}, fmt.Errorf("read job record %s: %w", name, err)
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return Record{}, fmt.Errorf("parse job record %s: %w", rs.path(name), err)
	}
	return rec, nil
}

// trySweepLock takes the directory's sweep lock (flock on .sweep.lock)
// without waiting; ok is false when another process holds it.
func (rs Records) trySweepLock() (unlock func(), ok bool, err error) {
	return rs.sweepLock(syscall.LOCK_NB)
}

// sweepLock takes the sweep lock; flags may add LOCK_NB. ok is false, with
// no error, when the directory does not exist (no job was ever recorded).
func (rs Records) sweepLock(flags int) (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(filepath.Join(rs.Dir, ".sweep.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("job records sweep lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|flags); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("job records sweep lock: %w", err)
	}
	return func() { _ = f.Close() }, true, nil
}

// Remove deletes name's record; removing an absent record is not an error.
func (rs Records) Remove(name string) error {
	unlock, err := rs.lock(false)
	if errors.Is(err, ErrNoRecord) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(rs.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove job record %s: %w", name, err)
	}
	return nil
}

// List returns every record, by name. A record that cannot be parsed is
// returned with only Job.Name set (and no runner, so not Alive).
func (rs Records) List() ([]Record, error) {
	ents, err := os.ReadDir(rs.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list job records %s: %w", rs.Dir, err)
	}
	var out []Record
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") || e.IsDir() {
			continue
		}
		rec, err := rs.Read(name)
		if err != nil {
			rec = Record{Job: JobContainer{Name: name}}
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Job.Name < out[j].Job.Name })
	return out, nil
}
