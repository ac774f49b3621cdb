package gitlab_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/gitlab/runnertest"
)

// dirDriver builds internal/dirdriver (the driver over directories) and
// writes its driver config; it returns the runner's [runners.custom] and a
// function running one more subcommand (gc).
func dirDriver(t *testing.T) (runnertest.Driver, string, func(args ...string) (string, error)) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "dirdriver")
	if out, err := exec.Command("go", "build", "-o", bin, "./internal/dirdriver").CombinedOutput(); err != nil {
		t.Fatalf("build dirdriver: %v\n%s", err, out)
	}
	root := filepath.Join(dir, "root")
	cfg := filepath.Join(dir, "gitlab.toml")
	toml := "root = \"" + root + "\"\ndefault_image = \"busybox\"\nshell = \"bash\"\nbuilds_dir = \"" + dir + "/builds\"\n"
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := func(sub string) []string { return []string{bin, sub, "--config", cfg} }
	d := runnertest.Driver{Config: argv("config"), Prepare: argv("prepare"), Cleanup: argv("cleanup"),
		Run: []string{bin, "run", "--config", cfg}}
	more := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--config", cfg)...).CombinedOutput()
		return string(out), err
	}
	return d, root, more
}

func options() runnertest.Options {
	return runnertest.Options{EOFGrace: time.Second, RetryInterval: 10 * time.Millisecond, CleanupTimeout: 10 * time.Second}
}

func containers(t *testing.T, root string) []string {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(root, "containers"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	recs, _ := os.ReadDir(filepath.Join(root, "gitlab", "jobs")) // the dirdriver's records
	for _, e := range recs {
		if strings.HasSuffix(e.Name(), ".json") {
			names = append(names, "record "+e.Name())
		}
	}
	return names
}

// TestDriverUnderHarness runs the gitlab package's driver as gitlab-runner
// would: a passing job, a failing one, the environment the job sees.
func TestDriverUnderHarness(t *testing.T) {
	d, root, _ := dirDriver(t)
	job := runnertest.Job{ID: 100, ProjectID: 7, RunnerID: 3, Image: "debian",
		Script:      []string{"echo hello from $CI_JOB_ID", "env | sort", "touch $CI_PROJECT_DIR/left-by-script"},
		AfterScript: []string{"echo status=$CI_JOB_STATUS", "ls $CI_PROJECT_DIR"},
		Services:    []runnertest.Service{{Name: "busybox", Alias: "db"}}}
	res := runnertest.MustRun(t, context.Background(), d, job, options())
	if res.Err != nil {
		t.Fatalf("job: %v\n%s", res.Err, res.Trace)
	}
	for _, want := range []string{"Using Custom executor with driver stint test...", "preparing gitlab-",
		"from image debian", "service busybox from image busybox as db", "hello from 100", "status=success", "left-by-script"} {
		if !strings.Contains(res.Trace, want) {
			t.Errorf("trace lacks %q", want)
		}
	}
	after := strings.SplitN(res.Trace, "hello from 100", 2)[1]
	for _, bad := range []string{"CUSTOM_ENV_", "BUILD_FAILURE_EXIT_CODE", "JOB_RESPONSE_FILE", "SYSTEM_FAILURE"} {
		if strings.Contains(after, bad) {
			t.Errorf("the job's environment has %s", bad)
		}
	}
	if left := containers(t, root); len(left) != 0 {
		t.Errorf("left after cleanup: %v", left)
	}

	// A job that leaves a process in the background (a server for its
	// tests) with its output: the run call still ends, with its pipes.
	job.ID, job.Script = 103, []string{"sleep 6 &", "echo left it running"}
	res = runnertest.MustRun(t, context.Background(), d, job, options())
	if res.Err != nil || res.Elapsed > 5*time.Second {
		t.Fatalf("background process: %v, %s\n%s", res.Err, res.Elapsed, res.Trace)
	}

	job.ID, job.Script = 101, []string{"echo failing", "exit 3"}
	res = runnertest.MustRun(t, context.Background(), d, job, options())
	var je *runnertest.JobError
	if !errors.As(res.Err, &je) || je.Kind != runnertest.ScriptFailure || je.ExitCode != 3 || !strings.Contains(res.Trace, "status=failed") {
		t.Fatalf("failing job: %v\n%s", res.Err, res.Trace)
	}
	commits, _ := os.ReadFile(filepath.Join(root, "commits.log"))
	if c := string(commits); !strings.Contains(c, "j100 outcome=passed") || !strings.Contains(c, "j101 outcome=failed") {
		t.Errorf("cache commits:\n%s", c)
	}

	job.ID, job.Image = 102, "alpine:3.20" // not local; no default_remote
	res, _ = runnertest.Run(context.Background(), d, job, options())
	if !errors.As(res.Err, &je) || je.Kind != runnertest.SystemFailure || !strings.Contains(res.Trace, `image "alpine:3.20"`) {
		t.Fatalf("unknown image: %v\n%s", res.Err, res.Trace)
	}
}

// TestDriverRunnerDies: while the runner lives, gc leaves its job alone;
// once it died mid-job, gc removes everything of the job's.
func TestDriverRunnerDies(t *testing.T) {
	d, root, more := dirDriver(t)
	job := runnertest.Job{ID: 200, ProjectID: 7, RunnerID: 3, Script: []string{"sleep 3"}}
	r := runnertest.StartRunner(t, runnertest.Request{Driver: d, Job: job, Options: options(),
		DieAt: "build_script", DieAfter: 1500 * time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for len(containers(t, root)) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if out, err := more("gc"); err != nil || strings.Contains(out, "removed") {
		t.Fatalf("gc while the runner lives: %v\n%s", err, out)
	}
	if len(containers(t, root)) == 0 {
		t.Fatal("gc removed a live runner's job")
	}
	if rep, err := r.Wait(); err == nil {
		t.Fatalf("the runner survived: %+v", rep)
	}
	if len(containers(t, root)) != 2 {
		t.Fatalf("after the runner died: %v", containers(t, root))
	}
	out, err := more("gc")
	if err != nil || !strings.Contains(out, "removed gitlab-") {
		t.Fatalf("gc after the runner died: %v\n%s", err, out)
	}
	if left := containers(t, root); len(left) != 0 {
		t.Errorf("left after gc: %v", left)
	}
}
