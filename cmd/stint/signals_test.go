package main

import (
	"bufio"
	"bytes"
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLIHangupAndQuitTearDown: a closed terminal (SIGHUP) and Ctrl-\
// (SIGQUIT) stop `stint run` as SIGTERM does, leaving nothing within 10 s.
func TestCLIHangupAndQuitTearDown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGQUIT} {
		t.Run(sig.String(), func(t *testing.T) {
			f := newCLI(t)
			p := f.spec(t, `
[job.long]
image = "busybox"
run = ["echo started", "sleep 600", "echo never"]
`)
			c := f.startUntil(t, "[long] started", "run", p)
			time.Sleep(300 * time.Millisecond) // into the sleep
			require.NoError(t, c.Process.Signal(sig))
			waitExit(t, c, 10*time.Second)
			f.assertClean(t)
		})
	}
}

// TestCLIClosedStdoutTearsDown is `stint run spec | head -1`: stint does not
// die of SIGPIPE, it tears down as for SIGTERM, whether the job keeps
// printing or prints nothing more.
func TestCLIClosedStdoutTearsDown(t *testing.T) {
	for name, loop := range map[string]string{
		"printing": "while true; do echo tick; sleep 0.2; done",
		"silent":   "sleep 600",
	} {
		t.Run(name, func(t *testing.T) {
			f := newCLI(t)
			p := f.spec(t, `
[job.long]
image = "busybox"
run = ["echo started", "`+loop+`"]
`)
			c := f.cmd("run", p)
			var stderr bytes.Buffer
			c.Stderr = &stderr
			out, err := c.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, c.Start())
			t.Cleanup(func() { _ = c.Process.Kill() })
			sc := bufio.NewScanner(out)
			deadline := time.AfterFunc(60*time.Second, func() { _ = c.Process.Kill() })
			for sc.Scan() && sc.Text() != "[long] started" {
			}
			deadline.Stop()
			require.NoError(t, out.Close()) // head -1 exits
			err = waitExit(t, c, 10*time.Second)
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				assert.NotEqual(t, -1, ee.ExitCode(), "stint died of a signal: %s", stderr.String())
			}
			assert.Contains(t, stderr.String(), "stdout closed: stopping jobs and tearing down")
			f.assertClean(t)
		})
	}
}

// waitExit waits up to d for c to exit and returns Wait's error.
func waitExit(t *testing.T, c *exec.Cmd, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("stint did not exit within %s", d)
		return nil
	}
}
