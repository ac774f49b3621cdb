package runnertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shDriver is testdata/driver.sh, named in each *_exec as a runner would.
func shDriver(t *testing.T) Driver {
	t.Helper()
	exe, err := filepath.Abs("testdata/driver.sh")
	if err != nil {
		t.Fatal(err)
	}
	return Driver{Config: []string{exe, "config"}, Prepare: []string{exe, "prepare"},
		Run: []string{exe, "run"}, Cleanup: []string{exe, "cleanup"}}
}

func fastOptions(root string) Options {
	return Options{
		Env:      append(os.Environ(), "FAKE_ROOT="+root),
		EOFGrace: 300 * time.Millisecond, RetryInterval: 10 * time.Millisecond,
		CleanupTimeout: 5 * time.Second, GracefulKillTimeout: 2 * time.Second, ForceKillTimeout: 2 * time.Second,
	}
}

func job(mode string, script ...string) Job {
	j := Job{ID: 77, ProjectID: 5, RunnerID: 9, Script: script}
	if mode != "" {
		j.Variables = []Variable{{Key: "FAKE_MODE", Value: mode}}
	}
	return j
}

func calls(res *Result) []string {
	var out []string
	for _, c := range res.Calls {
		out = append(out, strings.TrimSpace(c.Name+" "+c.Stage))
	}
	return out
}

func jobErr(t *testing.T, res *Result, kind Kind, code int) {
	t.Helper()
	var je *JobError
	if !errors.As(res.Err, &je) || je.Kind != kind || code >= 0 && je.ExitCode != code {
		t.Fatalf("job error = %v, want %s with exit code %d\ntrace:\n%s", res.Err, kind, code, res.Trace)
	}
}

// harnessCase is one job through testdata/driver.sh.
type harnessCase struct {
	name  string
	job   Job
	opts  func(*Options)
	check func(t *testing.T, res *Result)
}

// full is the calls of a job of script lines with an after_script.
var full = []string{"config", "prepare", "run prepare_script", "run get_sources", "run build_script",
	"run after_script", "run cleanup_file_variables", "cleanup"}

// TestHarnessStages proves the harness against a driver written in sh:
// the stages, the job's environment and how a stage's failure counts.
func TestHarnessStages(t *testing.T) {
	runCases(t, []harnessCase{
		{"passes", job("", "echo hello from job $CI_JOB_ID", "env | sort"), nil, func(t *testing.T, res *Result) {
			if res.Err != nil {
				t.Fatalf("job failed: %v\n%s", res.Err, res.Trace)
			}
			for _, want := range []string{"Using Custom executor with driver fake 0.0.1...", "prepared fake-9-5-0-77 with FAKE_JOB_ENV=fake-9-5-0-77",
				"Running on ", " via fake-9-5-0-77...", "\033[32;1m$ echo hello from job $CI_JOB_ID\033[0;m", "hello from job 77",
				"CI_JOB_STATUS=running", "CI_PROJECT_DIR=", "Running after script...", "status=success"} {
				if !strings.Contains(res.Trace, want) {
					t.Errorf("trace lacks %q:\n%s", want, res.Trace)
				}
			}
			for _, bad := range []string{"CUSTOM_ENV_", "BUILD_FAILURE_EXIT_CODE", "JOB_RESPONSE_FILE", "FAKE_JOB_ENV=", "FAKE_ROOT"} {
				if strings.Contains(strings.SplitN(res.Trace, "hello from job 77", 2)[1], bad) {
					t.Errorf("the job saw %s from the driver's environment", bad)
				}
			}
			if !slices.Equal(calls(res), full) {
				t.Errorf("calls %q, want %q", calls(res), full)
			}
			if res.Config["hostname"] != "fake-9-5-0-77" {
				t.Errorf("config = %v", res.Config)
			}
		}},
		{"script fails", job("", "echo before", "exit 3", "echo never"), nil, func(t *testing.T, res *Result) {
			jobErr(t, res, ScriptFailure, 3)
			if !strings.Contains(res.Trace, "status=failed") || strings.Contains(res.Trace, "\nnever") {
				t.Errorf("trace:\n%s", res.Trace)
			}
			if !slices.Equal(calls(res), full) {
				t.Errorf("calls %q, want %q", calls(res), full)
			}
		}},
		{"unknown exit code", job("run_exit_build_script", "true"), nil, func(t *testing.T, res *Result) {
			jobErr(t, res, SystemFailure, 42)
			if !slices.Contains(res.Stages, "after_script") || !slices.Contains(calls(res), "cleanup") {
				t.Errorf("calls %q", calls(res))
			}
		}},
		{"cancelled before the script", job("", "echo never"), func(o *Options) {
			o.BeforeStage = func(s string) error {
				if s == "build_script" {
					return errors.New("cancelled from the UI")
				}
				return nil
			}
		}, func(t *testing.T, res *Result) {
			jobErr(t, res, SystemFailure, -1)
			if strings.Contains(res.Trace, "\nnever") || calls(res)[len(res.Calls)-1] != "cleanup" {
				t.Errorf("calls %q\n%s", calls(res), res.Trace)
			}
		}},
		{"cache", Job{ID: 78, ProjectID: 5, RunnerID: 9, Script: []string{"mkdir -p out", "echo built > out/x"},
			Cache: &Cache{Key: "main", Paths: []string{"out"}}}, nil, func(t *testing.T, res *Result) {
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			for _, s := range []string{"restore_cache", "archive_cache"} {
				if !slices.Contains(res.Stages, s) {
					t.Errorf("stages %q lack %s", res.Stages, s)
				}
			}
		}},
	})
}

// TestHarnessCalls proves the runner's handling of the calls themselves:
// retries, leaked pipes, timeouts.
func TestHarnessCalls(t *testing.T) {
	runCases(t, []harnessCase{
		{"prepare retried", job("prepare_fail_once", "true"), nil, func(t *testing.T, res *Result) {
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			want := append([]string{"config", "prepare", "cleanup"}, full...)
			if !slices.Equal(calls(res), want) || !strings.Contains(res.Trace, "Will be retried in") {
				t.Errorf("calls %q, want %q", calls(res), want)
			}
		}},
		{"prepare fails", job("prepare_fail", "true"), nil, func(t *testing.T, res *Result) {
			jobErr(t, res, SystemFailure, 2)
			want := strings.Fields("config prepare cleanup config prepare cleanup config prepare cleanup")
			if !slices.Equal(calls(res), want) {
				t.Errorf("calls %q, want %q", calls(res), want)
			}
		}},
		{"prepare build failure is not retried", job("prepare_build_fail", "true"), nil, func(t *testing.T, res *Result) {
			jobErr(t, res, ScriptFailure, 1)
			if want := []string{"config", "prepare", "cleanup"}; !slices.Equal(calls(res), want) {
				t.Errorf("calls %q, want %q", calls(res), want)
			}
		}},
		{"config fails", job("config_fail", "true"), nil, func(t *testing.T, res *Result) {
			jobErr(t, res, SystemFailure, 2)
			if want := strings.Fields("config cleanup config cleanup config cleanup"); !slices.Equal(calls(res), want) {
				t.Errorf("calls %q, want %q", calls(res), want)
			}
		}},
		{"a monitor keeps prepare's stdout", job("prepare_leak", "true"), nil, func(t *testing.T, res *Result) {
			jobErr(t, res, SystemFailure, -1)
			if len(res.Leaks) != 3 || !errors.Is(res.Leaks[0], ErrPipesLeaked) {
				t.Errorf("leaks = %v, want one per prepare attempt", res.Leaks)
			}
		}},
		{"a detached monitor", job("prepare_detached", "true"), nil, func(t *testing.T, res *Result) {
			if res.Err != nil || len(res.Leaks) != 0 {
				t.Errorf("err %v, leaks %v", res.Err, res.Leaks)
			}
		}},
		{"cleanup timeout: SIGTERM", job("cleanup_hang", "true"), func(o *Options) { o.CleanupTimeout = 200 * time.Millisecond },
			func(t *testing.T, res *Result) {
				c := res.Calls[len(res.Calls)-1]
				if c.Name != "cleanup" || c.Killed != "SIGTERM" || c.Signal != "terminated" || c.Duration > 2*time.Second {
					t.Errorf("cleanup call = %+v", c)
				}
			}},
		{"cleanup timeout: SIGKILL", job("cleanup_stubborn", "true"), func(o *Options) {
			o.CleanupTimeout, o.GracefulKillTimeout = 200*time.Millisecond, 200*time.Millisecond
		}, func(t *testing.T, res *Result) {
			c := res.Calls[len(res.Calls)-1]
			if c.Name != "cleanup" || c.Killed != "SIGKILL" || c.Signal != "killed" {
				t.Errorf("cleanup call = %+v", c)
			}
		}},
	})
}

func runCases(t *testing.T, cases []harnessCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			opts := fastOptions(root)
			if c.opts != nil {
				c.opts(&opts)
			}
			j := c.job
			j.AfterScript = []string{"echo status=$CI_JOB_STATUS"}
			res, err := Run(context.Background(), shDriver(t), j, opts)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, res)
			if last := res.Calls[len(res.Calls)-1]; last.Killed != "" {
				return // a killed cleanup leaves its box: the driver's gc's work
			}
			if ents, _ := filepath.Glob(filepath.Join(root, "fake-*")); len(ents) != 0 {
				t.Errorf("the driver's cleanup left %v", ents)
			}
		})
	}
}

// TestRunnerDies: a runner killed mid-job makes no further call, not even
// cleanup; the driver's call in flight lives on in its own process group,
// and the process the driver recorded as its runner is gone.
func TestRunnerDies(t *testing.T) {
	root := t.TempDir()
	opts := fastOptions(root)
	j := job("", "sleep 5")
	j.ID = 4242 // unique: StartRunner finds the dead runner's temp dir by it
	r := StartRunner(t, Request{Driver: shDriver(t), Job: j, Options: opts,
		DieAt: "build_script", DieAfter: 500 * time.Millisecond})
	rep, err := r.Wait()
	if err == nil {
		t.Fatalf("the runner survived: %+v", rep)
	}
	box := filepath.Join(root, "fake-9-5-0-4242")
	pid, _ := os.ReadFile(filepath.Join(box, "runner.pid"))
	if strings.TrimSpace(string(pid)) != strconv.Itoa(r.PID) {
		t.Errorf("the driver recorded runner %q, the runner was %d", pid, r.PID)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", r.PID)); err == nil {
		t.Errorf("runner %d still in /proc", r.PID)
	}
	log, _ := os.ReadFile(filepath.Join(root, "calls.log"))
	if strings.Contains(string(log), "cleanup") || !strings.Contains(string(log), "run ") {
		t.Errorf("calls after the runner died:\n%s", log)
	}
	run, _ := os.ReadFile(filepath.Join(box, "run.pid"))
	pgid, err := strconv.Atoi(strings.TrimSpace(string(run)))
	if err != nil {
		t.Fatalf("run.pid: %q", run)
	}
	if err := syscall.Kill(-pgid, 0); err != nil {
		t.Errorf("the run call in flight died with the runner: %v", err)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // the orphan
}
