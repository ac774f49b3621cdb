package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type driverFixture struct {
	d    *Driver
	eng  *fakeEngine
	call Call
	log  *bytes.Buffer
	dir  string
}

// newDriver is a driver over a fake engine, called by "runner" pid 100
// (through stint's process group leader, pid 300) for job 5678.
func newDriver(t *testing.T) *driverFixture {
	t.Helper()
	dir := t.TempDir()
	cfg, err := ParseConfig("/etc/stint/gitlab.toml", "root = \"/var/lib/stint\"\ndefault_image = \"busybox\"\n")
	if err != nil {
		t.Fatal(err)
	}
	f := &driverFixture{eng: newFake(), log: &bytes.Buffer{}, dir: dir}
	f.d = &Driver{Config: cfg, Engine: f.eng, Records: Records{Dir: filepath.Join(dir, "jobs")},
		Proc: fakeProcFS(t, proc{300, 100, 300, 9, nil}, proc{100, 1, 100, 5, nil}), Version: "0.1.0", Log: f.log}
	vars := ids("12", "34", "0", "5678")
	vars[VarJobServices] = ""
	f.call = Call{Vars: vars, BuildFailureCode: 1, SystemFailureCode: 2,
		BuildExitCodeFile: filepath.Join(dir, "build_exit_code")}
	return f
}

// script writes a runner-style script file and returns its path.
func (f *driverFixture) script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(f.dir, "script")
	if err := os.WriteFile(p, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

const jobName = "gitlab-dfe2ee-r12-p34-c0-j5678"

func TestConfigOutput(t *testing.T) {
	f := newDriver(t)
	f.d.Config.Shell = "bash"
	out, err := f.d.ConfigOutput(f.call)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(out)
	golden(t, "testdata/config_output.golden", string(got)+"\n")
	if _, err := f.d.ConfigOutput(Call{Vars: map[string]string{}}); !errors.Is(err, ErrNoJobIDs) {
		t.Errorf("config without job ids: %v", err)
	}
}

// TestJobOutcome runs prepare, the stages and cleanup against the fake
// engine and checks the exit codes and whether the caches commit.
func TestJobOutcome(t *testing.T) {
	type step struct {
		stage Stage
		code  int
	}
	cases := []struct {
		name    string
		steps   []step
		outcome Outcome
	}{
		{"passes", []step{{StagePrepare, 0}, {StageGetSources, 0}, {StageBuild, 0}, {StageAfterScript, 0},
			{StageArchiveCache, 0}, {StageCleanupFileVariables, 0}}, OutcomePassed},
		{"script fails", []step{{StagePrepare, 0}, {StageGetSources, 0}, {StageBuild, 3}, {StageAfterScript, 0},
			{StageArchiveCacheOnFailure, 0}, {StageCleanupFileVariables, 0}}, OutcomeFailed},
		{"after_script fails, job passes", []step{{StagePrepare, 0}, {StageBuild, 0}, {StageAfterScript, 1},
			{StageCleanupFileVariables, 0}}, OutcomePassed},
		{"get_sources fails", []step{{StagePrepare, 0}, {StageGetSources, 128}, {StageCleanupFileVariables, 0}}, OutcomeFailed},
		{"cache upload fails", []step{{StagePrepare, 0}, {StageBuild, 0}, {StageArchiveCache, 1}}, OutcomeFailed},
		{"a later step fails", []step{{StageBuild, 0}, {"step_release", 1}}, OutcomeFailed},
		{"killed before the script", []step{{StagePrepare, 0}}, OutcomeFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newDriver(t)
			ctx := context.Background()
			if err := f.d.Prepare(ctx, f.call); err != nil {
				t.Fatal(err)
			}
			for _, s := range c.steps {
				f.eng.execCode = s.code
				err := f.d.Run(ctx, f.call, f.script(t, "#!/usr/bin/env sh\necho hi\n"), s.stage, &bytes.Buffer{}, &bytes.Buffer{})
				var bf *BuildFailure
				switch {
				case s.code == 0 && err != nil:
					t.Fatalf("%s: %v", s.stage, err)
				case s.code != 0 && (!errors.As(err, &bf) || bf.Code != s.code || f.call.ExitCode(err) != 1):
					t.Fatalf("%s exit %d: err = %v, want a build failure", s.stage, s.code, err)
				}
			}
			if err := f.d.Cleanup(ctx, f.call); err != nil {
				t.Fatal(err)
			}
			if got, ok := f.eng.commits[jobName]; !ok || got != c.outcome {
				t.Errorf("cleanup outcome = %v (called: %v), want %v", got, ok, c.outcome)
			}
			if len(f.eng.live) != 0 {
				t.Errorf("left running: %v", f.eng.live)
			}
			if _, err := f.d.Records.Read(jobName); !errors.Is(err, ErrNoRecord) {
				t.Errorf("record left after cleanup: %v", err)
			}
		})
	}
}

func TestPrepareRecordsJob(t *testing.T) {
	f := newDriver(t)
	f.call.Vars[VarJobImage] = "debian"
	f.call.Vars[VarJobServices] = `[{"name":"busybox","alias":"db","entrypoint":null,"command":["httpd","-f"]}]`
	if err := f.d.Prepare(context.Background(), f.call); err != nil {
		t.Fatal(err)
	}
	rec, err := f.d.Records.Read(jobName)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Runner.PID != 100 || rec.Runner.Start != 5 || rec.Job.Image != "debian" || rec.Job.Hostname != jobName {
		t.Errorf("record = %+v", rec)
	}
	want := []CacheVolume{{Name: "gitlab-dfe2ee-p34", Target: "/cache", Commit: CommitOnSuccess}}
	if !slices.Equal(rec.Job.Caches, want) {
		t.Errorf("caches = %+v, want %+v", rec.Job.Caches, want)
	}
	if s := rec.Job.Services; len(s) != 1 || s[0].Container != jobName+"-s0" || s[0].Image != "busybox" || s[0].Alias != "db" {
		t.Errorf("services = %+v", s)
	}
	if !strings.Contains(f.log.String(), "preparing "+jobName+" from image debian") {
		t.Errorf("prepare's job log: %q", f.log)
	}
}

func TestPrepareFailures(t *testing.T) {
	cases := []struct {
		name string
		set  func(f *driverFixture)
		want error
	}{
		{"disallowed image", func(f *driverFixture) {
			f.d.Config.AllowedImages = []string{}
			f.call.Vars[VarJobImage] = "debian"
		}, ErrImageNotAllowed},
		{"unknown image", func(f *driverFixture) { f.call.Vars[VarJobImage] = "alpine:3.20" }, ErrImageUnknown},
		{"disallowed service", func(f *driverFixture) {
			f.d.Config.AllowedImages = []string{}
			f.call.Vars[VarJobServices] = `[{"name":"debian","alias":"db"}]`
		}, ErrImageNotAllowed},
		{"bad services", func(f *driverFixture) { f.call.Vars[VarJobServices] = `{` }, ErrBadService},
		{"no ids", func(f *driverFixture) { delete(f.call.Vars, VarJobID) }, ErrNoJobIDs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newDriver(t)
			c.set(f)
			err := f.d.Prepare(context.Background(), f.call)
			if !errors.Is(err, c.want) || f.call.Finish(err, nil) != 2 {
				t.Fatalf("err = %v, want %v and the system failure code", err, c.want)
			}
			if len(f.eng.calls) != 0 {
				t.Errorf("engine called: %v", f.eng.calls)
			}
			if l, _ := f.d.Records.List(); len(l) != 0 {
				t.Errorf("records left: %+v", l)
			}
			if err := f.d.Cleanup(context.Background(), f.call); err != nil && !errors.Is(err, ErrNoJobIDs) {
				t.Errorf("cleanup after a failed prepare: %v", err)
			}
		})
	}
}

// TestPrepareAgain: the runner retries a failed prepare (after a cleanup
// that may itself have failed): the new attempt removes the old one first.
func TestPrepareAgain(t *testing.T) {
	f := newDriver(t)
	ctx := context.Background()
	f.eng.prepareErr = errors.New("lxc-start: boom")
	if err := f.d.Prepare(ctx, f.call); f.call.ExitCode(err) != 2 {
		t.Fatalf("failing prepare: %v", err)
	}
	f.eng.prepareErr = nil
	if err := f.d.Prepare(ctx, f.call); err != nil {
		t.Fatal(err)
	}
	want := []string{"prepare " + jobName + " busybox", "cleanup " + jobName + " outcome=abandoned", "prepare " + jobName + " busybox"}
	if !slices.Equal(f.eng.calls, want) {
		t.Errorf("engine calls %q, want %q", f.eng.calls, want)
	}
}

// TestSweep: prepare and gc remove the jobs of runners that are gone, and
// only those; a cleanup that failed leaves its job to them.
func TestSweep(t *testing.T) {
	f := newDriver(t)
	ctx := context.Background()
	mine := Record{Job: JobContainer{Name: "gitlab-mine"}, Runner: Process{PID: 100, Start: 5, BootID: "boot-1"}}
	dead := Record{Job: JobContainer{Name: "gitlab-dead"}, Runner: Process{PID: 100, Start: 4, BootID: "boot-1"}}
	for _, r := range []Record{mine, dead} {
		_ = f.d.Records.Write(r)
		f.eng.live[r.Job.Name] = r.Job
	}
	if err := f.d.Prepare(ctx, f.call); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.eng.live["gitlab-dead"]; ok {
		t.Error("prepare left a dead runner's job")
	}
	if _, ok := f.eng.live["gitlab-mine"]; !ok {
		t.Error("prepare removed a live runner's job")
	}
	f.eng.cleanupErr = errors.New("destroy: busy")
	if err := f.d.Cleanup(ctx, f.call); f.call.ExitCode(err) != 2 {
		t.Fatalf("failing cleanup: %v", err)
	}
	f.eng.cleanupErr = nil
	removed, err := SweepJobs(ctx, f.eng, f.d.Records, f.d.Proc)
	if err != nil || !slices.Equal(removed, []string{jobName}) {
		t.Fatalf("SweepJobs = %v, %v; want the job whose cleanup failed", removed, err)
	}
}

func TestRunEnvironment(t *testing.T) {
	f := newDriver(t)
	ctx := context.Background()
	environ := append(os.Environ(), "BUILD_FAILURE_EXIT_CODE=1", "SYSTEM_FAILURE_EXIT_CODE=2",
		"BUILD_EXIT_CODE_FILE=/tmp/c/build_exit_code", "JOB_RESPONSE_FILE=/tmp/c/response.json", "TMPDIR=/tmp/c",
		"CUSTOM_ENV_CI_JOB_ID=5678", "CUSTOM_ENV_CI_PROJECT_ID=34", "CUSTOM_ENV_CI_RUNNER_ID=12",
		"CUSTOM_ENV_CI_CONCURRENT_PROJECT_ID=0", "CUSTOM_ENV_CI_SERVER_URL=https://gitlab.example.com",
		"CUSTOM_ENV_CI_JOB_TOKEN=secret", "CUSTOM_ENV_CI_JOB_SERVICES=")
	call, err := ParseCall(environ)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.d.Prepare(ctx, call); err != nil {
		t.Fatal(err)
	}
	body := "#!/usr/bin/env bash\n\necho hi\n"
	var out bytes.Buffer
	if err := f.d.Run(ctx, call, f.script(t, body), StageBuild, &out, &out); err != nil {
		t.Fatal(err)
	}
	x := f.eng.execs[0]
	if bad := forbidden(x.Env); len(bad) > 0 {
		t.Errorf("the driver's environment reached the container: %v", bad)
	}
	if !slices.Equal(x.Env, ContainerEnv(nil)) || strings.Contains(strings.Join(x.Env, " "), "secret") {
		t.Errorf("env = %v", x.Env)
	}
	if string(x.Script) != body || x.Path != "/tmp/stint-gitlab/build_script" ||
		!slices.Equal(x.Argv, []string{"bash", "/tmp/stint-gitlab/build_script"}) || out.String() != "out\n" {
		t.Errorf("exec = %+v", x)
	}
}

func TestRunFailures(t *testing.T) {
	f := newDriver(t)
	ctx := context.Background()
	s := f.script(t, "echo\n")
	if err := f.d.Run(ctx, f.call, s, StageBuild, &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, ErrNotPrepared) || f.call.ExitCode(err) != 2 {
		t.Errorf("run before prepare: %v", err)
	}
	if err := f.d.Prepare(ctx, f.call); err != nil {
		t.Fatal(err)
	}
	f.eng.execErr = errors.New("container gone")
	if err := f.d.Run(ctx, f.call, s, StageBuild, &bytes.Buffer{}, &bytes.Buffer{}); f.call.ExitCode(err) != 2 {
		t.Errorf("engine failure: %v", err)
	}
	f.eng.execErr = nil
	if err := f.d.Run(ctx, f.call, filepath.Join(f.dir, "nope"), StageBuild, &bytes.Buffer{}, &bytes.Buffer{}); f.call.ExitCode(err) != 2 {
		t.Errorf("missing script: %v", err)
	}
}

func TestInterpreter(t *testing.T) {
	for in, want := range map[string][]string{
		"#!/usr/bin/env sh\n\ntrap 'exit 1' TERM\n": {"sh"},
		"#!/usr/bin/env bash\n":                     {"bash"},
		"#!/bin/bash -e\n":                          {"/bin/bash", "-e"},
		"#!/usr/bin/env -S bash -e\n":               {"bash", "-e"},
		"#!\n":                                      {"/bin/sh"},
		"echo no shebang\n":                         {"/bin/sh"},
		"":                                          {"/bin/sh"},
	} {
		if got := Interpreter([]byte(in)); !slices.Equal(got, want) {
			t.Errorf("Interpreter(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStages(t *testing.T) {
	always := []Stage{StageAfterScript, StageArchiveCacheOnFailure, StageUploadArtifactsOnFailure, StageCleanupFileVariables}
	for _, s := range []Stage{StagePrepare, StageGetSources, StageClearWorktree, StageRestoreCache, StageDownloadArtifacts,
		StageBuild, StageAfterScript, StageArchiveCache, StageArchiveCacheOnFailure, StageUploadArtifactsOnSuccess,
		StageUploadArtifactsOnFailure, StageCleanupFileVariables, "step_release"} {
		if !s.Known() {
			t.Errorf("%s not Known", s)
		}
		if s.Always() != slices.Contains(always, s) {
			t.Errorf("%s.Always() = %v", s, s.Always())
		}
	}
	if Stage("step_").Known() || Stage("build").Known() || !Stage("step_release").User() || StageAfterScript.User() {
		t.Error("Known/User")
	}
}
