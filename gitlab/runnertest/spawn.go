package runnertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Request is what the fakerunner command reads on stdin: a job to run, and
// when "the runner" dies.
type Request struct {
	Driver  Driver
	Job     Job
	Options Options
	// DieAt names a stage: once its run call started, after DieAfter, the
	// runner process kills itself with SIGKILL, as a runner killed mid-job:
	// no further call, no cleanup. The call in flight lives on as an orphan
	// in its own process group, as the runner's children do.
	DieAt    string
	DieAfter time.Duration
}

// Report is a Result as JSON, what fakerunner writes on stdout.
type Report struct {
	Calls    []string // "config", "run build_script", ...
	Stages   []string
	Trace    string
	Kind     Kind // "" when the job passed
	ExitCode int
	Error    string
	Leaks    []string
}

// Report summarises r.
func (r *Result) Report() Report {
	rep := Report{Stages: r.Stages, Trace: r.Trace}
	for _, c := range r.Calls {
		rep.Calls = append(rep.Calls, strings.TrimSpace(c.Name+" "+c.Stage))
	}
	var je *JobError
	if errors.As(r.Err, &je) {
		rep.Kind, rep.ExitCode = je.Kind, je.ExitCode
	}
	if r.Err != nil {
		rep.Error = r.Err.Error()
	}
	for _, l := range r.Leaks {
		rep.Leaks = append(rep.Leaks, l.Error())
	}
	return rep
}

// Runner is a job being run by a runner process of its own.
type Runner struct {
	PID int // the runner's: what the driver records as its caller
	cmd *exec.Cmd
	out bytes.Buffer
	err bytes.Buffer
}

// StartRunner builds the fakerunner command and starts req in it, so that a
// test can watch a runner die mid-job (Request.DieAt). It needs the go
// command; the build output goes under t.TempDir(). The job's id should be
// unique among the tests running at once: it finds the temp dir a dead
// runner left, to remove it when the test ends.
func StartRunner(t testing.TB, req Request) *Runner {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fakerunner")
	build := exec.Command("go", "build", "-o", bin, "github.com/stintdev/stint/gitlab/runnertest/fakerunner")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fakerunner: %v\n%s", err, out)
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("fakerunner request: %v", err)
	}
	r := &Runner{cmd: exec.Command(bin)}
	r.cmd.Stdin, r.cmd.Stdout, r.cmd.Stderr = bytes.NewReader(in), &r.out, &r.err
	r.cmd.Env = os.Environ()
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start fakerunner: %v", err)
	}
	r.PID = r.cmd.Process.Pid
	// A runner that dies leaves its executor's temp dir, as gitlab-runner
	// does; the test's job id finds it.
	t.Cleanup(func() { removeTempDirs(req.Job.ID) })
	return r
}

// removeTempDirs removes the executor temp dirs of job id.
func removeTempDirs(id int64) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "custom-executor*"))
	for _, d := range dirs {
		b, _ := os.ReadFile(filepath.Join(d, "response.json"))
		if strings.Contains(string(b), fmt.Sprintf(`"id":%d,`, id)) {
			_ = os.RemoveAll(d)
		}
	}
}

// Wait waits for the runner. A runner that died returns an error (an
// *exec.ExitError) and no report.
func (r *Runner) Wait() (*Report, error) {
	if err := r.cmd.Wait(); err != nil {
		return nil, fmt.Errorf("fakerunner: %w (stderr %q)", err, r.err.String())
	}
	var rep Report
	if err := json.Unmarshal(r.out.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("fakerunner report: %w", err)
	}
	return &rep, nil
}

// MustRun is Run for tests: the test fails when the harness can't run, and
// when any call's stdout or stderr stayed open after its process exited (a
// leaked monitor: the real runner would hang there until its timeout). The
// job's own outcome is the result's Err, for the test to judge.
func MustRun(t testing.TB, ctx context.Context, d Driver, job Job, opts Options) *Result {
	t.Helper()
	res, err := Run(ctx, d, job, opts)
	if err != nil {
		t.Fatalf("runner harness: %v", err)
	}
	for _, l := range res.Leaks {
		t.Errorf("driver call left its output open: %v", l)
	}
	return res
}
