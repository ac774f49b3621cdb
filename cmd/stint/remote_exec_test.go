package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/lxdenv"
	"github.com/stintdev/stint/internal/testenv"
)

// remoteFixture is a CLI fixture with the private LXD daemon added as
// remote "l" (its unix socket).
func remoteFixture(t *testing.T) (*cliFixture, *lxdenv.Daemon) {
	t.Helper()
	f := newCLI(t)
	d := lxdenv.StartDaemon(t)
	out, code := f.run(t, "remote", "add", "l", "unix://"+d.Socket)
	require.Equal(t, 0, code, out)
	return f, d
}

// assertNothingLeft: no instance on the remote, no record under --root.
func assertNothingLeft(t *testing.T, f *cliFixture, d *lxdenv.Daemon) {
	t.Helper()
	assert.Empty(t, lxcList(t, d), "no instance left on the remote")
	ents, _ := os.ReadDir(filepath.Join(f.root, "state"))
	for _, e := range ents {
		assert.False(t, strings.HasSuffix(e.Name(), ".json"), "state record left: %s", e.Name())
	}
}

// TestRemoteExec: `stint --remote l exec` as locally: the env given and
// none of the caller's, stdin and stdout through pipes, the command's exit
// status (a signal as 128+N), a read-only bind copied in and read-only, a
// timeout (exit 1); what the remote can't do is exit 2 (a read-write bind
// over HTTPS, host networking), an unreachable remote exit 3 naming it.
// Nothing is left on the remote.
func TestRemoteExec(t *testing.T) {
	f, d := remoteFixture(t)
	src := t.TempDir()
	require.NoError(t, os.Chmod(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "in"), []byte("host data\n"), 0o644))

	c := f.cmd("--remote", "l", "exec", "--mount", src+":/src:ro", "-e", "A=B", "-w", "/work", "busybox", "--",
		"sh", "-c", "tr a-z A-Z; cat /src/in; env; pwd; touch /src/new 2>/dev/null && echo WRITABLE; exit 5")
	c.Env = append(os.Environ(), "STINT_CANARY=leaked")
	c.Stdin = strings.NewReader("from stdin\n")
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output() // stdout through a pipe
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s\n%s", out, stderr.String())
	assert.Equal(t, 5, ee.ExitCode(), "stint exec exits with the command's code:\n%s%s", out, stderr.String())
	assert.Contains(t, string(out), "FROM STDIN\nhost data\n")
	assert.Contains(t, string(out), "A=B\n")
	assert.Contains(t, string(out), "/work\n")
	assert.NotContains(t, string(out), "STINT_CANARY")
	assert.NotContains(t, string(out), "WRITABLE", "the bind is read-only")
	assert.NoFileExists(t, filepath.Join(src, "new"))

	out2, code := f.run(t, "--remote", "l", "exec", "busybox", "--", "sh", "-c", "kill -9 $$")
	assert.Equal(t, 128+9, code, out2)

	begin := time.Now()
	out2, code = f.run(t, "--remote", "l", "exec", "--timeout", "2s", "busybox", "--", "sleep", "600")
	assert.Equal(t, 1, code, out2)
	assert.Contains(t, out2, "timed out")
	assert.Less(t, time.Since(begin), 60*time.Second)

	out2, code = f.run(t, "--remote", "l", "exec", "--network", "host", "busybox", "--", "true")
	assert.Equal(t, ExitUsage, code, out2)
	t.Logf("host networking: %s", out2)
	out2, code = f.run(t, "remote", "add", "h", d.URL, "--token", d.TrustToken(t, "stint-exec"))
	require.Equal(t, 0, code, out2)
	out2, code = f.run(t, "--remote", "h", "exec", "--mount", src+":/src", "busybox", "--", "true")
	assert.Equal(t, ExitUsage, code, out2)
	assert.Contains(t, out2, src, "the refused mount is named")
	t.Logf("read-write bind over HTTPS: %s", out2)
	assertNothingLeft(t, f, d)

	// An unreachable remote is the remote's failure, naming it.
	out2, code = f.run(t, "remote", "add", "gone", d.URL, "--accept-certificate") // trusted already
	require.Equal(t, 0, code, out2)
	d.MustLxc(t, "config", "unset", "core.https_address")
	out2, code = f.run(t, "--remote", "gone", "exec", "busybox", "--", "true")
	assert.Equal(t, ExitHost, code, out2)
	assert.Contains(t, out2, `"gone"`)
	t.Logf("unreachable: %s", out2)
	out2, code = f.run(t, "--remote", "never-added", "exec", "busybox", "--", "true")
	assert.Equal(t, ExitUsage, code, out2)
}

// TestRemoteExecSIGINT: Ctrl-C (SIGINT to stint's process group) during a
// remote exec without a terminal deletes the instance and the record.
func TestRemoteExecSIGINT(t *testing.T) {
	f, d := remoteFixture(t)
	c := f.startUntil(t, "ready", "--remote", "l", "exec", "busybox", "--", "sh", "-c", "echo ready; sleep 600")
	require.NotEmpty(t, lxcList(t, d), "the exec's instance runs")
	require.NoError(t, syscall.Kill(-c.Process.Pid, syscall.SIGINT))
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "an interrupted exec does not pass")
	case <-time.After(2 * time.Minute):
		t.Fatal("stint exec did not exit after SIGINT")
	}
	assertNothingLeft(t, f, d)
}

// startOnPty starts stint with a fresh terminal as its stdin, stdout,
// stderr and controlling terminal (the test holds the master, 33x101,
// TERM=xterm); what it shows is collected in shown.
func startOnPty(t *testing.T, f *cliFixture, args ...string) (c *exec.Cmd, master *os.File, shown *testenv.SyncBuffer, done chan error) {
	t.Helper()
	master, slave := openTestPty(t)
	require.NoError(t, unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101}))
	c = f.cmd(args...)
	c.Env = append(os.Environ(), "TERM=xterm")
	c.Stdin, c.Stdout, c.Stderr = slave, slave, slave
	c.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	shown = &testenv.SyncBuffer{}
	go func() { _, _ = io.Copy(shown, master) }()
	require.NoError(t, c.Start())
	t.Cleanup(func() { _ = c.Process.Kill() })
	done = make(chan error, 1)
	go func() { done <- c.Wait() }()
	return c, master, shown, done
}

// waitFor waits until shown holds s.
func waitFor(t *testing.T, shown *testenv.SyncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(shown.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %q in:\n%s", s, shown.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exitCode waits for done and returns the exit code.
func exitCode(t *testing.T, done chan error, shown *testenv.SyncBuffer) int {
	t.Helper()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err == nil {
			return 0
		}
		require.ErrorAs(t, err, &ee, shown.String())
		return ee.ExitCode()
	case <-time.After(2 * time.Minute):
		t.Fatalf("stint hung:\n%s", shown.String())
	}
	return -1
}

// TestRemoteExecTTY: on a terminal, `stint --remote l exec` gives the
// command a terminal in the instance (`tty` names one there, the window
// size is the caller's), its input is the caller's keys, its exit status
// is stint's; Ctrl-C is the command's (exit 130), and the instance goes.
func TestRemoteExecTTY(t *testing.T) {
	f, d := remoteFixture(t)
	_, master, shown, done := startOnPty(t, f, "--remote", "l", "exec", "busybox", "--", "sh", "-c",
		`test -t 0 && test -t 1 && echo stdin-is-a-tty; tty; echo "size $(stty size) term=$TERM"; read line; echo "got[$line]"; exit 3`)
	waitFor(t, shown, "term=")
	_, err := io.WriteString(master, "typed\r")
	require.NoError(t, err)
	assert.Equal(t, 3, exitCode(t, done, shown), shown.String())
	assert.Contains(t, shown.String(), "stdin-is-a-tty")
	assert.Regexp(t, `/dev/pts/\d+`, shown.String(), "tty names the command's terminal inside")
	assert.Contains(t, shown.String(), "size 33 101 term=xterm")
	assert.Contains(t, shown.String(), "got[typed]")
	assert.Equal(t, 1, strings.Count(shown.String(), "typed\r\n"), "echoed once, by the instance's terminal:\n%q", shown.String())
	assertNothingLeft(t, f, d)

	_, master, shown, done = startOnPty(t, f, "--remote", "l", "exec", "busybox", "--", "sh", "-c", `echo rea""dy; sleep 600`)
	waitFor(t, shown, "ready")
	time.Sleep(300 * time.Millisecond)
	_, err = io.WriteString(master, "\x03")
	require.NoError(t, err)
	assert.Equal(t, 128+int(syscall.SIGINT), exitCode(t, done, shown), shown.String())
	assertNothingLeft(t, f, d)
}
