package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/gitlab/runnertest"
)

// TestGitLabCache plays gitlab-runner with the default cache policy (one
// volume per project, commit on success): a passing job's writes to
// cache_dir reach the next job, a failing job's and an abandoned job's
// (runner killed, then stint gc) do not.
func TestGitLabCache(t *testing.T) {
	f := newCLI(t)
	cli := stintCLI(t, f.bin, f.root)
	if out, code := cli("image", "build", "--builder", "busybox", "--alias", "busybox"); code != 0 {
		t.Fatalf("busybox image: %d\n%s", code, out)
	}
	cfg := filepath.Join(f.dir, "gitlab.toml")
	if err := os.WriteFile(cfg, []byte("root = \""+f.root+"\"\ndefault_image = \"busybox\"\nshell = \"sh\"\ncache_dir = \"/cache\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := func(sub string) []string { return []string{f.bin, "gitlab", sub, "--config", cfg} }
	d := runnertest.Driver{Config: argv("config"), Prepare: argv("prepare"), Run: argv("run"), Cleanup: argv("cleanup")}
	opts := runnertest.Options{EOFGrace: 3 * time.Second, RetryInterval: 100 * time.Millisecond, CleanupTimeout: time.Minute}
	run := func(id int64, script ...string) *runnertest.Result {
		t.Helper()
		return runnertest.MustRun(t, context.Background(), d, runnertest.Job{ID: id, ProjectID: 7, RunnerID: 1, Script: script}, opts)
	}
	if res := run(9101, "echo one > /cache/kept"); res.Err != nil {
		t.Fatalf("passing job: %v\n%s", res.Err, res.Trace)
	}
	if res := run(9102, "echo two > /cache/poison", "rm /cache/kept", "exit 4"); res.Err == nil {
		t.Fatalf("failing job passed:\n%s", res.Trace)
	}
	r := runnertest.StartRunner(t, runnertest.Request{Driver: d,
		Job:     runnertest.Job{ID: 9103, ProjectID: 7, RunnerID: 1, Script: []string{"echo three > /cache/abandoned; rm -f /cache/kept; sleep 60"}},
		Options: opts, DieAt: "build_script", DieAfter: 3 * time.Second})
	if _, err := r.Wait(); err == nil {
		t.Fatal("the runner survived")
	}
	if out, code := cli("gc"); code != 0 {
		t.Fatalf("gc: %d\n%s", code, out)
	}
	res := run(9104, "echo listing: $(ls /cache | tr '\\n' ' ')", "cat /cache/kept")
	if res.Err != nil || !strings.Contains(res.Trace, "listing: kept \n") && !strings.Contains(res.Trace, "listing: kept\n") ||
		!strings.Contains(res.Trace, "one") {
		t.Fatalf("the cache after a passing, a failing and an abandoned job (want only kept):\n%v\n%s", res.Err, res.Trace)
	}
	if out, _ := cli("ps"); strings.Contains(out, "gitlab") {
		t.Errorf("left after the jobs:\n%s", out)
	}
	f.assertClean(t)
}
