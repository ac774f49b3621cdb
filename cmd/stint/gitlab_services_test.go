package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/gitlab/runnertest"
	"github.com/stintdev/stint/remote"
)

// TestGitLabServices plays gitlab-runner with a job that has a service
// (CI_JOB_SERVICES): the job's script reaches it by its alias on the job's
// private network, and cleanup (or, for a runner killed mid-job, gc)
// leaves nothing of either, nor of their network.
func TestGitLabServices(t *testing.T) {
	f, _ := netCLI(t)
	before := privateBridges(t)
	cli := stintCLI(t, f.bin, f.root)
	if out, code := cli("image", "build", "--builder", "busybox", "--alias", "busybox"); code != 0 {
		t.Fatalf("busybox image: %d\n%s", code, out)
	}
	cfg := filepath.Join(f.dir, "gitlab.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("root = \""+f.root+"\"\ndefault_image = \"busybox\"\nshell = \"sh\"\n"), 0o600))
	argv := func(sub string) []string { return []string{f.bin, "gitlab", sub, "--config", cfg} }
	d := runnertest.Driver{Config: argv("config"), Prepare: argv("prepare"), Run: argv("run"), Cleanup: argv("cleanup")}
	opts := runnertest.Options{EOFGrace: 3 * time.Second, RetryInterval: 100 * time.Millisecond, CleanupTimeout: time.Minute}
	svc := runnertest.Service{Name: "busybox", Alias: "db",
		Command: []string{"/bin/sh", "-c", "exec nc -ll -p 5432 -e /bin/busybox echo pong"}}
	job := runnertest.Job{ID: 9101, ProjectID: 1, RunnerID: 1, Services: []runnertest.Service{svc},
		// No ready check in GitLab's services: the script waits for it.
		Script: []string{"for i in $(seq 100); do nc db 5432 </dev/null && break; sleep 0.2; done", "echo hosts: $(grep -w db /etc/hosts)"}}
	res := runnertest.MustRun(t, context.Background(), d, job, opts)
	require.NoError(t, res.Err, res.Trace)
	assert.Contains(t, res.Trace, "\npong", "the job reaches its service by alias")
	assert.Contains(t, res.Trace, "hosts: 10.88.")
	if out, _ := cli("ps"); strings.Contains(out, "gitlab") {
		t.Errorf("left after cleanup:\n%s", out)
	}
	assertNoServiceNetwork(t, f.root, before)

	job.ID, job.Script = 9102, []string{"nc db 5432 </dev/null; sleep 60"}
	r := runnertest.StartRunner(t, runnertest.Request{Driver: d, Job: job, Options: opts, DieAt: "build_script", DieAfter: 2 * time.Second})
	if _, err := r.Wait(); err == nil {
		t.Fatal("the runner survived")
	}
	if out, _ := cli("ps"); !strings.Contains(out, "gitlab") {
		t.Errorf("nothing of the killed runner's job before gc:\n%s", out)
	}
	if out, code := cli("gc"); code != 0 {
		t.Fatalf("gc: %d\n%s", code, out)
	}
	if out, _ := cli("ps"); strings.Contains(out, "gitlab") {
		t.Errorf("left after gc:\n%s", out)
	}
	assertNoServiceNetwork(t, f.root, before)
	f.assertClean(t)
}

// TestGitLabRemoteImage: CI_JOB_IMAGE = "REMOTE:ALIAS" of an image remote
// added to the root (a simplestreams server on loopback) is pulled on first
// use; with default_remote, a bare alias the store lacks is looked up there.
func TestGitLabRemoteImage(t *testing.T) {
	url, fp := servedBusybox(t, false)
	f := newCLI(t)
	addRemote(t, f.root, "ss", url, remote.ProtocolSimplestreams)
	cfg := filepath.Join(f.dir, "gitlab.toml")
	require.NoError(t, os.WriteFile(cfg, []byte("root = \""+f.root+"\"\ndefault_remote = \"ss\"\nshell = \"sh\"\n"), 0o600))
	argv := func(sub string) []string { return []string{f.bin, "gitlab", sub, "--config", cfg} }
	d := runnertest.Driver{Config: argv("config"), Prepare: argv("prepare"), Run: argv("run"), Cleanup: argv("cleanup")}
	opts := runnertest.Options{EOFGrace: 3 * time.Second, RetryInterval: 100 * time.Millisecond, CleanupTimeout: time.Minute}
	for i, img := range []string{"ss:heldout/bb", "heldout/bb"} {
		job := runnertest.Job{ID: 9201 + int64(i), ProjectID: 1, RunnerID: 1, Image: img, Script: []string{"echo from remote image"}}
		res := runnertest.MustRun(t, context.Background(), d, job, opts)
		require.NoError(t, res.Err, "image %s:\n%s", img, res.Trace)
		assert.Contains(t, res.Trace, "ss:heldout/bb", "prepare names the chosen reference")
		assert.Contains(t, res.Trace, "\nfrom remote image")
	}
	out, code := stintCLI(t, f.bin, f.root)("image", "list")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, fp[:12], "the pulled image is in the store")
	f.assertClean(t)
}
