package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/gitlab"
	"github.com/stintdev/stint/gitlab/enginetest"
	"github.com/stintdev/stint/gitlab/runnertest"
	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/runner"
)

// TestGitLabDriver plays gitlab-runner against the real binary on the
// busybox image (gitlabScenario).
func TestGitLabDriver(t *testing.T) {
	f := newCLI(t) // its cleanup gcs everything and destroys the golden volumes
	if out, code := stintCLI(t, f.bin, f.root)("image", "build", "--builder", "busybox", "--alias", "busybox"); code != 0 {
		t.Fatalf("busybox image: %d\n%s", code, out)
	}
	gitlabScenario(t, f, "busybox", "sh")
}

// TestGitLabDebootstrap is TestGitLabDriver on a Debian image built by
// debootstrap from the host's apt mirror (minutes; not in -short), with the
// runner's bash shell: Debian's sh is dash, which can't read the
// runner's $'...' quoting (docs/gitlab.md "The shell").
func TestGitLabDebootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("debootstrap takes minutes; not in -short")
	}
	f := newCLI(t)
	testenv.RequiresTool(t, "debootstrap", "dpkg")
	if _, err := images.HostMirror(); err != nil {
		testenv.Unavailable(t, err.Error())
	}
	out, code := stintCLI(t, f.bin, f.root)("image", "build", "--builder", "debootstrap", "--suite", "bookworm",
		"--variant", "minbase", "--alias", "debian")
	if code != 0 {
		t.Fatalf("debootstrap image: %d\n%s", code, out)
	}
	gitlabScenario(t, f, "debian", "bash")
}

// gitlabScenario plays gitlab-runner against the binary with image as the
// default image and the runner's shell: a passing job's trace shows the
// script's output, a failing script gives the build-failure code, and a
// runner killed mid-job leaves nothing after `stint gc`.
func gitlabScenario(t *testing.T, f *cliFixture, image, shell string) {
	t.Helper()
	bin, dir, root := f.bin, f.dir, f.root
	cli := stintCLI(t, bin, root)
	cfg := filepath.Join(dir, "gitlab.toml")
	if err := os.WriteFile(cfg, []byte("root = \""+root+"\"\ndefault_image = \""+image+"\"\nshell = \""+shell+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := func(sub string) []string { return []string{bin, "gitlab", sub, "--config", cfg} }
	d := runnertest.Driver{Config: argv("config"), Prepare: argv("prepare"), Run: argv("run"), Cleanup: argv("cleanup")}
	opts := runnertest.Options{EOFGrace: 3 * time.Second, RetryInterval: 100 * time.Millisecond, CleanupTimeout: time.Minute}
	job := runnertest.Job{ID: 9001, ProjectID: 1, RunnerID: 1, Script: []string{"echo hello from $(hostname)", "touch $CI_PROJECT_DIR/mark", "cat /etc/os-release 2>/dev/null || true"},
		AfterScript: []string{"echo status=$CI_JOB_STATUS", "ls $CI_PROJECT_DIR"}}
	res := runnertest.MustRun(t, context.Background(), d, job, opts)
	if res.Err != nil || !strings.Contains(res.Trace, "hello from gitlab-") || !strings.Contains(res.Trace, "status=success") ||
		!strings.Contains(res.Trace, "mark") {
		t.Fatalf("passing job: %v\n%s", res.Err, res.Trace)
	}
	if image == "debian" && !strings.Contains(res.Trace, "VERSION_CODENAME=bookworm") {
		t.Errorf("the job did not run on the Debian image:\n%s", res.Trace)
	}
	job.ID, job.Script = 9002, []string{"exit 3"}
	res = runnertest.MustRun(t, context.Background(), d, job, opts)
	var je *runnertest.JobError
	if !errors.As(res.Err, &je) || je.Kind != runnertest.ScriptFailure || je.ExitCode != 3 || !strings.Contains(res.Trace, "status=failed") {
		t.Fatalf("failing job: %v\n%s", res.Err, res.Trace)
	}
	job.ID, job.Script = 9003, []string{"sleep 60"}
	r := runnertest.StartRunner(t, runnertest.Request{Driver: d, Job: job, Options: opts, DieAt: "build_script", DieAfter: 2 * time.Second})
	if _, err := r.Wait(); err == nil {
		t.Fatal("the runner survived")
	}
	if out, code := cli("gc"); code != 0 {
		t.Fatalf("gc: %d\n%s", code, out)
	}
	if out, _ := cli("ps"); strings.Contains(out, "gitlab") {
		t.Errorf("left after gc:\n%s", out)
	}
	f.assertClean(t)
}

// TestGitLabEngineConformance runs the gitlab engine suite on the Host's
// engine (local LXC, the busybox image).
func TestGitLabEngineConformance(t *testing.T) {
	f := newCLI(t)
	if out, code := stintCLI(t, f.bin, f.root)("image", "build", "--builder", "busybox", "--alias", "busybox"); code != 0 {
		t.Fatalf("busybox image: %d\n%s", code, out)
	}
	enginetest.Suite(t, func(t *testing.T) (gitlab.Engine, gitlab.JobContainer) {
		h, err := runner.Open(context.Background(), f.root, runner.Options{Containers: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		return &hostEngine{h: h}, gitlab.JobContainer{Image: "busybox", BuildsDir: "/builds", CacheDir: "/cache", Network: "none"}
	})
}
