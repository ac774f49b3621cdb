package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shellSet is a long-lived container that writes to its console, and a
// job that fails and is kept.
const shellSet = `
[container.web]
image = "busybox"
env = { GREETING = "hi" }
command = ["sh", "-c", "echo console-hello; i=0; while sleep 1; do i=$((i+1)); echo tick $i; done"]

[job.bad]
image = "busybox"
keep_on_failure = true
workdir = "/work"
env = { WHO = "the-job" }
run = ["echo data > /work/f", "exit 3"]
`

// runIn runs stint with stdin and returns its combined output and code.
func (f *cliFixture) runIn(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	c := f.cmd(args...)
	c.Stdin = strings.NewReader(stdin)
	out, err := c.CombinedOutput()
	var ee *exec.ExitError
	if err != nil {
		require.ErrorAs(t, err, &ee, string(out))
		return string(out), ee.ExitCode()
	}
	return string(out), 0
}

// TestRemoteShellAndLogs: on a remote, `stint logs` prints a long-lived
// container's console through LXD's API (and follows it) and a job's log
// (written on this host); `stint shell` enters a running long-lived
// container and a job kept with --keep-on-failure (started for the shell,
// stopped after it) with their own environments, commands fed on stdin;
// unknown names are exit 2, a stopped container too. Nothing is left.
func TestRemoteShellAndLogs(t *testing.T) {
	f, d := remoteFixture(t)
	p := filepath.Join(f.dir, "stint.toml")
	require.NoError(t, os.WriteFile(p, []byte("name = \"sl\"\n"+specHead+shellSet), 0o644))
	rl := func(args ...string) (string, int) { return f.run(t, append([]string{"--remote", "l"}, args...)...) }

	// A container of the set here that is missing is made first.
	out, code := f.runIn(t, "echo made=$GREETING\n", "--remote", "l", "shell", "web")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "creating web")
	assert.Contains(t, out, "made=hi")
	require.NotEmpty(t, instanceOf(t, d, "sl-web-"), "%v", lxcList(t, d))
	require.Eventually(t, func() bool {
		out, code = rl("logs", "sl.web")
		return code == 0 && strings.Contains(out, "console-hello")
	}, 30*time.Second, 500*time.Millisecond, "the console log: %d %s", code, out)
	out, code = rl("logs", "web") // NAME, as only one set has it
	assert.Equal(t, 0, code, out)
	c := f.startUntil(t, "tick", "--remote", "l", "logs", "-f", "sl.web")
	require.NoError(t, syscall.Kill(-c.Process.Pid, syscall.SIGINT))
	require.NoError(t, c.Wait(), "logs -f ends with 0 on SIGINT")
	out, code = rl("logs", "nosuch")
	assert.Equal(t, ExitUsage, code, out)

	// A running long-lived container: its env, root by default.
	out, code = f.runIn(t, "echo in=$GREETING; id -u; exit 4\n", "--remote", "l", "shell", "sl.web")
	assert.Equal(t, 4, code, out)
	assert.Contains(t, out, "in=hi\n0\n")
	out, code = f.runIn(t, "echo again=$GREETING\n", "--remote", "l", "shell", "web", "--", "sh")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "again=hi")
	out, code = f.runIn(t, "", "--remote", "l", "shell", "nosuch")
	assert.Equal(t, ExitUsage, code, out)
	// Ctrl-C ends the shell's command in the container too.
	c = f.startUntil(t, "ready", "--remote", "l", "shell", "sl.web", "--", "sh", "-c", "echo ready; exec sleep 4242")
	require.NoError(t, syscall.Kill(-c.Process.Pid, syscall.SIGINT))
	_ = c.Wait()
	assert.Eventually(t, func() bool {
		return !strings.Contains(d.MustLxc(t, "exec", instanceOf(t, d, "sl-web-"), "--", "ps"), "sleep 4242")
	}, 10*time.Second, 250*time.Millisecond, "the shell's command outlived stint")
	// On a terminal: one in the instance.
	_, _, shown, done := startOnPty(t, f, "--remote", "l", "shell", "sl.web", "--", "sh", "-c", "tty; exit 6")
	assert.Equal(t, 6, exitCode(t, done, shown), shown.String())
	assert.Regexp(t, `/dev/pts/\d+`, shown.String())

	// A kept job: its env and workdir, what it wrote; stopped again after.
	out, code = rl("run", "--keep-on-failure", p, "bad")
	require.Equal(t, 1, code, out)
	assert.Regexp(t, `debug: stint .*--remote l shell stint-bad-`, out)
	kept := regexp.MustCompile(`stint-bad-[0-9a-f]{8}`).FindString(out)
	out, code = f.runIn(t, "cat f; echo who=$WHO; pwd\n", "--remote", "l", "shell", "bad")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "data\nwho=the-job\n/work\n")
	inst := instanceOf(t, d, "stintr-bad-")
	require.NotEmpty(t, inst, "%v", lxcList(t, d))
	assert.Equal(t, "STOPPED", strings.TrimSpace(d.MustLxc(t, "list", inst, "-c", "s", "-f", "csv")), "stopped again after the shell")
	out, code = f.runIn(t, "echo by-name\n", "--remote", "l", "shell", kept)
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "by-name")
	out, code = rl("logs", "bad")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "+ exit 3")
	out, code = f.runIn(t, "", "shell", "bad")
	assert.Equal(t, ExitUsage, code, "a remote's kept job is not entered locally: %s", out)
	out, code = rl("gc", "--kept")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, kept)

	// Stopped by hand: no shell (exit 2); what its console wrote since
	// the last read (LXD hands console output out once).
	web := instanceOf(t, d, "sl-web-")
	d.MustLxc(t, "stop", "--force", web)
	out, code = f.runIn(t, "", "--remote", "l", "shell", "sl.web")
	assert.Equal(t, ExitUsage, code, out)
	out, code = rl("logs", "sl.web")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "tick ")
	assert.NotContains(t, out, "console-hello", "printed once already")

	out, code = rl("down", p)
	require.Equal(t, 0, code, out)
	assertNothingLeft(t, f, d)
	ents, _ := os.ReadDir(filepath.Join(f.root, "reconcile"))
	for _, e := range ents {
		assert.False(t, strings.HasSuffix(e.Name(), ".kept.json"), "a kept job's shell info left: %s", e.Name())
	}
}

// TestRemoteLogsFollowJob: the log of a job running on a remote is
// written on this host; `stint --remote l logs -f JOB` follows it and
// ends, exit 0, once the job has.
func TestRemoteLogsFollowJob(t *testing.T) {
	f, d := remoteFixture(t)
	p := f.spec(t, "[job.slow]\nimage = \"busybox\"\nrun = [\"echo started\", \"sleep 3\", \"echo finished\"]\n")
	run := f.startUntil(t, "[slow] started", "--remote", "l", "run", p)
	out, code := f.run(t, "--remote", "l", "logs", "-f", "slow")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "started\n")
	assert.Contains(t, out, "finished\n", "followed to the job's end")
	require.NoError(t, run.Wait())
	assertNothingLeft(t, f, d)
}
