package lxcrt

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/runner/container"
)

// waitExit waits at most 10 s for m to exit and returns its exit code.
func waitExit(t *testing.T, m *monitor) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- m.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		t.Fatal("the monitor did not exit: its constructor did not take it (it went on into the Go program)")
		return -1
	}
}

// A spare monitor stops in monitor.c's constructor, before the Go runtime
// (this test binary's tests would run otherwise): the end of its socket
// ends it with 0; a request it can't read ends it with 1.
func TestSpareMonitorEnds(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)

	m, err := spawnMonitor(self)
	require.NoError(t, err)
	require.NoError(t, m.ctl.Close())
	assert.Equal(t, 0, waitExit(t, m), "no request: nothing to do")

	m, err = spawnMonitor(self)
	require.NoError(t, err)
	// Strings without the descriptors.
	require.NoError(t, unix.Sendmsg(int(m.ctl.Fd()), []byte("/x\x00y\x00/bin\x00"), nil, nil, 0))
	m.ctl.Close()
	assert.Equal(t, 1, waitExit(t, m), "a malformed request")

	m, err = spawnMonitor(self)
	require.NoError(t, err)
	// Descriptors, but two strings of three.
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	require.NoError(t, unix.Sendmsg(int(m.ctl.Fd()), []byte("/x\x00y\x00"), unix.UnixRights(int(r.Fd()), int(w.Fd())), nil, 0))
	m.ctl.Close()
	assert.Equal(t, 1, waitExit(t, m), "a malformed request")
}

// A spare dies with the process that spawned it (it reads the end of its
// socket): a child of this test spawns one, prints its pid and is killed.
func TestSpareMonitorDiesWithStint(t *testing.T) {
	if os.Getenv("STINT_TEST_SPAWN_MONITOR") == "1" {
		self, err := os.Executable()
		require.NoError(t, err)
		m, err := spawnMonitor(self)
		require.NoError(t, err)
		fmt.Println(m.cmd.Process.Pid)
		time.Sleep(time.Minute)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpareMonitorDiesWithStint$")
	cmd.Env = append(os.Environ(), "STINT_TEST_SPAWN_MONITOR=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err, "the child printed %q", line)
	require.NoError(t, unix.Kill(pid, 0), "the spare runs")
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for unix.Kill(pid, 0) == nil {
		// Gone from the process table once its new parent reaped it.
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(st), ") Z ") {
			break
		}
		require.True(t, time.Now().Before(deadline), "the spare monitor outlived the process that spawned it")
		time.Sleep(10 * time.Millisecond)
	}
}

// Prime spawns a spare for a start on the fast path (only there); the
// start takes it, and Close kills a spare no start took.
func TestPrimeSpawnsTheMonitor(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	r := &Runtime{self: self, host: Host{Agent: "/nonexistent/stint-agent"}}

	r.Prime(container.Init{Kind: container.InitBoot})()
	r.Prime(container.Init{Kind: container.InitCommand, Command: []string{"x"}})()
	r.monitors.drop()
	assert.Empty(t, r.monitors.ready, "no monitor for a container with an init of its own")

	release := r.Prime(container.Init{Kind: container.InitMinimal})
	release()
	r.monitors.mu.Lock()
	r.monitors.spawnedLocked()
	require.Len(t, r.monitors.ready, 1)
	spare := r.monitors.ready[0].cmd.Process.Pid
	r.monitors.mu.Unlock()
	m, err := r.monitors.take(self)
	require.NoError(t, err)
	assert.Equal(t, spare, m.cmd.Process.Pid, "the start took the spare Prime spawned")
	assert.Empty(t, r.monitors.ready)
	m.kill()

	r.Prime(container.Init{Kind: container.InitMinimal})()
	require.NoError(t, r.Close())
	assert.Empty(t, r.monitors.ready)
	assert.Zero(t, r.monitors.pending)

	off := &Runtime{self: self} // no agent: not the fast path
	off.Prime(container.Init{Kind: container.InitMinimal})()
	assert.Zero(t, off.monitors.pending)
	assert.Empty(t, off.monitors.ready)
}
