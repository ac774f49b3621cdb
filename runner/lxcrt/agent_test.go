package lxcrt_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/container/containertest"
	"github.com/stintdev/stint/runner/lxcrt"
)

// withAgent builds stint-agent into a directory of the test (go's build
// cache makes the second build cheap) and points the runtimes made after
// it at it: the fast path. It returns the binary.
func withAgent(t *testing.T) string {
	t.Helper()
	testenv.RequiresLXC(t)
	dir := t.TempDir()
	testenv.Reachable(t, dir) // the containers' mapped root binds it
	bin := filepath.Join(dir, "stint-agent")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/stintdev/stint/cmd/stint-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build stint-agent: %s", out)
	t.Setenv(lxcrt.AgentEnv, bin)
	return bin
}

func TestFindAgent(t *testing.T) {
	agentBin := withAgent(t)
	assert.Equal(t, agentBin, lxcrt.FindAgent("/nonexistent/stint"), "$STINT_AGENT first")
	t.Setenv(lxcrt.AgentEnv, "off")
	assert.Equal(t, "", lxcrt.FindAgent(agentBin), "off turns the fast path off, even with the agent beside stint")
	t.Setenv(lxcrt.AgentEnv, "")
	assert.Equal(t, agentBin, lxcrt.FindAgent(filepath.Join(filepath.Dir(agentBin), "stint")), "beside stint")
	assert.Equal(t, "", lxcrt.FindAgent("/nonexistent/stint"))
}

func TestAgentIsPID1AndRunsExecs(t *testing.T) {
	agentBin := withAgent(t)
	f := newFixture(t, false)
	require.Equal(t, agentBin, f.rt.Host().Agent)
	ctx := context.Background()
	t0 := time.Now()
	f.start(t, "fast", container.Config{})
	t.Logf("start: %v", time.Since(t0))
	conf, err := f.rt.Config("fast")
	require.NoError(t, err)
	assert.Contains(t, string(conf), "lxc.init.cmd = /.stint/agent")
	assert.NotContains(t, string(conf), lxcrt.HostInit, "no init.lxc on the fast path")

	t0 = time.Now()
	out, st := f.sh(t, "fast", "cat /proc/1/cmdline")
	t.Logf("one exec: %v", time.Since(t0))
	require.True(t, st.Success(), out)
	assert.Equal(t, "/.stint/agent", strings.TrimRight(out, "\x00"))

	_, st = f.sh(t, "fast", "exit 7")
	assert.Equal(t, container.ExitStatus{Code: 7}, st)
	_, st = f.sh(t, "fast", "kill -TERM $$")
	assert.Equal(t, syscall.SIGTERM, st.Signal)
	var envOut bytes.Buffer
	st, err = f.rt.Exec(ctx, "fast", container.ExecOptions{Argv: []string{"/bin/env"}, Env: []string{"B=2", "A=1"}, Stdout: &envOut})
	require.NoError(t, err)
	require.True(t, st.Success())
	assert.Equal(t, "B=2\nA=1\n", envOut.String(), "the env is exactly the Exec's: no container=lxc, no PATH added")

	// User, groups, cwd, separate streams, stdin.
	var stdout, stderr bytes.Buffer
	st, err = f.rt.Exec(ctx, "fast", container.ExecOptions{
		Argv: []string{"/bin/sh", "-c", "id -u; id -G; pwd; cat; echo oops >&2"}, Env: []string{"PATH=/bin"},
		UID: 1000, GID: 1000, Groups: []int{1000, 27}, Cwd: "/home/app",
		Stdin: strings.NewReader("from stdin\n"), Stdout: &stdout, Stderr: &stderr,
	})
	require.NoError(t, err)
	require.True(t, st.Success(), stderr.String())
	assert.Equal(t, "1000\n1000 27\n/home/app\nfrom stdin\n", stdout.String())
	assert.Equal(t, "oops\n", stderr.String())

	// A command that isn't there: a message and 127, as a shell says.
	stderr.Reset()
	st, err = f.rt.Exec(ctx, "fast", container.ExecOptions{Argv: []string{"/nonexistent"}, Stderr: &stderr})
	require.NoError(t, err)
	assert.Equal(t, 127, st.Code)
	assert.Contains(t, stderr.String(), "/nonexistent")
}

// A spare monitor killed before its start is replaced: the start works.
func TestAgentStartsWithADeadSpare(t *testing.T) {
	withAgent(t)
	f := newFixture(t, false)
	f.rt.Prime(container.Init{Kind: container.InitMinimal})()
	require.Equal(t, 1, lxcrt.KillSpares(f.rt))
	f.start(t, "dead", container.Config{})
	out, st := f.sh(t, "dead", "echo up")
	require.True(t, st.Success(), out)
	assert.Equal(t, "up\n", out)
	require.Len(t, monitors(t, f.rt.LXCPath()), 1)
}

func TestAgentBusyFallsBackToAttach(t *testing.T) {
	withAgent(t)
	f := newFixture(t, false)
	f.start(t, "busy", container.Config{})
	done := make(chan container.ExitStatus, 1)
	go func() {
		_, st := f.sh(t, "busy", "sleep 1")
		done <- st
	}()
	time.Sleep(200 * time.Millisecond)
	out, st := f.sh(t, "busy", "echo meanwhile")
	assert.True(t, st.Success())
	assert.Equal(t, "meanwhile\n", out)
	assert.True(t, (<-done).Success())
}

func TestAgentStopEndsExecAndMonitor(t *testing.T) {
	withAgent(t)
	f := newFixture(t, false)
	ctx := context.Background()
	f.start(t, "stp", container.Config{})
	// Its monitor is a process of stint's binary (here the test's), not
	// lxc-start: monitor.go.
	mons := monitors(t, f.rt.LXCPath())
	require.Len(t, mons, 1)
	self, err := os.Executable()
	require.NoError(t, err)
	exe, err := os.Readlink(strings.Fields(mons[0])[0] + "/exe")
	require.NoError(t, err)
	assert.Equal(t, self, exe)
	type result struct {
		st  container.ExitStatus
		err error
	}
	res := make(chan result, 1)
	go func() {
		st, err := f.rt.Exec(ctx, "stp", container.ExecOptions{Argv: []string{"/bin/sh", "-c", "sleep 600"}, Env: []string{"PATH=/bin"}})
		res <- result{st, err}
	}()
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, f.rt.Stop(ctx, "stp"))
	select {
	case r := <-res:
		require.NoError(t, r.err)
		assert.Equal(t, syscall.SIGKILL, r.st.Signal, "killed with the container, as an attached command is")
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not end the running Exec")
	}
	assert.Empty(t, monitors(t, f.rt.LXCPath()), "the monitor exited with the container")
	st, err := f.rt.State(ctx, "stp")
	require.NoError(t, err)
	assert.Equal(t, container.StateStopped, st)
	// And it starts again, on the fast path.
	require.NoError(t, f.rt.Start(ctx, "stp"))
	out, est := f.sh(t, "stp", "echo again")
	assert.True(t, est.Success())
	assert.Equal(t, "again\n", out)
	// Stopped again for real: the first Stop's note that it stopped the
	// container (a later Stop's shortcut) went with the new start.
	require.NoError(t, f.rt.Stop(ctx, "stp"))
	st, err = f.rt.State(ctx, "stp")
	require.NoError(t, err)
	assert.Equal(t, container.StateStopped, st)
	assert.Empty(t, monitors(t, f.rt.LXCPath()))
	require.NoError(t, f.rt.Stop(ctx, "stp"), "a second Stop of a stopped container")
	require.NoError(t, f.rt.Destroy(ctx, "stp"))
	assert.Empty(t, monitors(t, f.rt.LXCPath()))
}

func TestAgentStopsIdleAndFrozenContainers(t *testing.T) {
	withAgent(t)
	f := newFixture(t, false)
	ctx := context.Background()
	for name, freeze := range map[string]bool{"idle": false, "frozen": true} {
		f.start(t, name, container.Config{})
		_, st := f.sh(t, name, "sleep 600 >/dev/null 2>&1 &")
		require.True(t, st.Success())
		if freeze {
			require.NoError(t, f.rt.Freeze(ctx, name))
		}
		t0 := time.Now()
		require.NoError(t, f.rt.Stop(ctx, name))
		t.Logf("stop (frozen: %v): %v", freeze, time.Since(t0))
		st2, err := f.rt.State(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, container.StateStopped, st2)
		assert.Empty(t, monitors(t, f.rt.LXCPath()), "frozen: %v", freeze)
	}
}

// monitors lists the monitor processes (monitor.go: stint-monitor, a
// process of this test binary) running for containers in lxcpath: a
// monitor's output is its container's start.out there.
func monitors(t *testing.T, lxcpath string) []string {
	t.Helper()
	var out []string
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	require.NoError(t, err)
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.HasPrefix(b, []byte("stint-monitor\x00")) {
			continue
		}
		if dest, err := os.Readlink(filepath.Join(filepath.Dir(p), "fd", "1")); err == nil && strings.HasPrefix(dest, lxcpath+"/") {
			out = append(out, filepath.Dir(p)+" "+dest)
		}
	}
	return out
}

// TestConformanceAgent runs the contract's suite on the fast path.
func TestConformanceAgent(t *testing.T) {
	withAgent(t)
	containertest.Suite(t, func(t *testing.T) containertest.Harness {
		f := newFixture(t, false)
		return containertest.Harness{
			Runtime: f.rt,
			Config: func(*testing.T) container.Config {
				return container.Config{Root: container.Root{Dir: f.rootfs}, IDMap: f.idmap}
			},
		}
	})
}

// TestAgentLargeEnvironment: a command whose environment is larger than a
// socket's default send buffer (~208 KiB) runs on the fast path too (it
// failed with "message too long").
func TestAgentLargeEnvironment(t *testing.T) {
	withAgent(t)
	f := newFixture(t, false)
	f.start(t, "bigenv", container.Config{})
	v := strings.Repeat("x", 100_000)
	var out strings.Builder
	st, err := f.rt.Exec(context.Background(), "bigenv", container.ExecOptions{
		Argv: []string{"/bin/sh", "-c", `echo ${#A} ${#B} ${#C}`}, Env: []string{"A=" + v, "B=" + v, "C=" + v}, Stdout: &out,
	})
	require.NoError(t, err)
	require.True(t, st.Success())
	assert.Equal(t, "100000 100000 100000\n", out.String())
}
