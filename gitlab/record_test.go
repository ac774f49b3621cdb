package gitlab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRunnerProcess(t *testing.T) {
	const marker = "/tmp/custom-executor1/response.json"
	call := []string{"PATH=/bin", "JOB_RESPONSE_FILE=" + marker}
	runner := Process{PID: 100, Start: 5, BootID: "boot-1"}
	cases := []struct {
		name   string
		marker string
		procs  []proc
		want   Process
	}{
		// The runner (100) started stint (300) directly: stint leads its group.
		{"direct", marker, []proc{{300, 100, 300, 9, call}, {100, 1, 100, 5, nil}}, runner},
		// config.toml names a wrapper (200) that runs stint without exec.
		{"wrapper", marker, []proc{{300, 200, 200, 9, call}, {200, 100, 200, 8, call}, {100, 1, 100, 5, nil}}, runner},
		// sudo (200) with use_pty: its monitor (250) runs stint in a
		// session of its own; the environment leads to the runner.
		{"sudo with a pty", marker, []proc{{300, 250, 300, 9, call}, {250, 200, 250, 8, call},
			{200, 100, 200, 7, call}, {100, 1, 100, 5, []string{"HOME=/home/gitlab-runner"}}}, runner},
		// No marker: the parent of the process group's leader.
		{"no marker, wrapper", "", []proc{{300, 200, 200, 9, nil}, {200, 100, 200, 8, nil}, {100, 1, 100, 5, nil}}, runner},
		// No marker and the leader is gone: stint's own parent stands in.
		{"no marker, leader gone", "", []proc{{300, 250, 200, 9, nil}, {250, 100, 100, 8, nil}, {100, 1, 100, 5, nil}},
			Process{PID: 250, Start: 8, BootID: "boot-1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := fakeProcFS(t, c.procs...).Runner(c.marker)
			if err != nil || got != c.want {
				t.Fatalf("Runner() = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestAlive(t *testing.T) {
	fs := fakeProcFS(t, proc{300, 100, 300, 9, nil}, proc{100, 1, 100, 5, nil})
	cases := []struct {
		name   string
		runner Process
		want   bool
	}{
		{"same process", Process{PID: 100, Start: 5, BootID: "boot-1"}, true},
		{"no boot id recorded", Process{PID: 100, Start: 5}, true},
		{"pid reused", Process{PID: 100, Start: 4, BootID: "boot-1"}, false},
		{"another boot", Process{PID: 100, Start: 5, BootID: "boot-0"}, false},
		{"gone", Process{PID: 4242, Start: 5, BootID: "boot-1"}, false},
		{"abandoned record", Process{}, false},
	}
	for _, c := range cases {
		if got := fs.Alive(Record{Runner: c.runner}); got != c.want {
			t.Errorf("%s: Alive = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestHostProcess(t *testing.T) {
	me, err := HostProc.Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !Alive(Record{Runner: me}) {
		t.Errorf("this test process %+v is not Alive", me)
	}
	me.Start++
	if Alive(Record{Runner: me}) {
		t.Errorf("a process with another start time is Alive")
	}
	if _, err := HostProc.Runner("/nonexistent/response.json"); err != nil {
		t.Error(err)
	}
}

func TestRecords(t *testing.T) {
	rs := Records{Dir: filepath.Join(t.TempDir(), "jobs")}
	if _, err := rs.Read("gitlab-x"); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("Read absent: %v", err)
	}
	if l, err := rs.List(); err != nil || len(l) != 0 {
		t.Fatalf("List of a missing dir = %v, %v", l, err)
	}
	rec := Record{Job: JobContainer{Name: "gitlab-x", Image: "busybox"}, Runner: Process{PID: 1, Start: 2},
		Created: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)}
	for _, r := range []Record{rec, {Job: JobContainer{Name: "gitlab-a"}}} {
		if err := rs.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	rec.Failed = true
	if err := rs.Write(rec); err != nil {
		t.Fatal(err)
	}
	got, err := rs.Read("gitlab-x")
	if err != nil || !got.Failed || got.Runner != rec.Runner || !got.Created.Equal(rec.Created) {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(rs.Dir, "gitlab-torn.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := rs.List()
	if err != nil || len(l) != 3 || l[0].Job.Name != "gitlab-a" || l[1].Job.Name != "gitlab-torn" || l[2].Job.Name != "gitlab-x" {
		t.Fatalf("List = %+v, %v", l, err)
	}
	for _, n := range []string{"gitlab-x", "gitlab-x", "gitlab-a", "gitlab-torn"} {
		if err := rs.Remove(n); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(rs.Dir)
	for _, e := range ents {
		if e.Name() != ".lock" {
			t.Errorf("left in the records dir: %s", e.Name())
		}
	}
	// A run call that outlived its runner finds the record gone: it stays gone.
	if err := rs.Update("gitlab-x", func(r *Record) { r.Passed = true }); !errors.Is(err, ErrNoRecord) {
		t.Errorf("Update of a removed record: %v", err)
	}
	if _, err := rs.Read("gitlab-x"); !errors.Is(err, ErrNoRecord) {
		t.Errorf("Update brought a removed record back: %v", err)
	}
}

func TestSweepMakesNothing(t *testing.T) {
	rs := Records{Dir: filepath.Join(t.TempDir(), "gitlab", "jobs")}
	if removed, err := SweepJobs(context.Background(), newFake(), rs, HostProc); err != nil || removed != nil {
		t.Fatalf("SweepJobs = %v, %v", removed, err)
	}
	if _, err := os.Stat(filepath.Dir(rs.Dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a sweep of a root without GitLab jobs made %s: %v", rs.Dir, err)
	}
}

func TestSweepLock(t *testing.T) {
	rs := Records{Dir: t.TempDir()}
	if _, ok, err := (Records{Dir: filepath.Join(rs.Dir, "missing")}).trySweepLock(); ok || err != nil {
		t.Errorf("sweep lock of a missing dir: %v %v", ok, err)
	}
	unlock, ok, err := rs.trySweepLock()
	if err != nil || !ok {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if _, ok, err := rs.trySweepLock(); err != nil || ok {
		t.Fatalf("second lock while held: %v %v", ok, err)
	}
	removed, err := SweepJobs(context.Background(), newFake(), rs, HostProc)
	if err != nil || removed != nil {
		t.Errorf("SweepJobs while another sweeps: %v %v", removed, err)
	}
	unlock()
	if u, ok, err := rs.trySweepLock(); err != nil || !ok {
		t.Fatalf("lock after unlock: %v %v", ok, err)
	} else {
		u()
	}
}
