package containertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
)

// Harness is what Suite needs of a runtime under test.
type Harness struct {
	Runtime container.Runtime
	// Config returns the Config of a fresh container: its root prepared
	// (for a local runtime, a directory with /bin/sh and the busybox
	// applets the tests use: sh, cat, echo, pwd, sleep, kill).
	Config func(t *testing.T) container.Config
}

// Factory makes a Harness for one test; cleanup goes through t.Cleanup.
type Factory func(t *testing.T) Harness

// Suite runs the lifecycle contract of container.Runtime on the runtimes
// factory makes: a runtime's own test is a gate, then
// containertest.Suite(t, factory).
func Suite(t *testing.T, factory Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Lifecycle", testLifecycle},
		{"ExecEnvExactly", testExecEnv},
		{"ExecStreams", testExecStreams},
		{"ExecExitStatus", testExecExitStatus},
		{"ExecCwd", testExecCwd},
		{"ExecConcurrent", testExecConcurrent},
		{"StopEndsExec", testStopEndsExec},
		{"Sentinels", testSentinels},
		{"IdempotentStopDestroy", testIdempotent},
		{"DestroyKeepsRootDir", testDestroyKeepsRootDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, factory(t))
		})
	}
}

// Name returns a fresh container name, unique on this host (other tests
// may run containers beside this one). Not "stint-": a gc of another stint
// root on this host removes empty cgroups of such names it has no record
// of, and a starting container's cgroups are empty for a moment.
func Name(t *testing.T) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	base := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(base) > 30 {
		base = base[len(base)-30:]
	}
	return "ct-" + strings.Trim(base, "-") + "-" + hex.EncodeToString(b[:])
}

// started creates and starts a fresh container, destroyed at cleanup.
func started(t *testing.T, h Harness) string {
	t.Helper()
	name := Name(t)
	ctx := context.Background()
	require.NoError(t, h.Runtime.Create(ctx, name, h.Config(t)))
	t.Cleanup(func() { _ = h.Runtime.Destroy(context.Background(), name) })
	require.NoError(t, h.Runtime.Start(ctx, name))
	return name
}

func sh(t *testing.T, h Harness, name, script string, env ...string) (string, container.ExitStatus) {
	t.Helper()
	var out bytes.Buffer
	st, err := h.Runtime.Exec(context.Background(), name, container.ExecOptions{
		Argv: []string{"/bin/sh", "-c", script}, Env: env, Stdout: &out, Stderr: &out,
	})
	require.NoError(t, err)
	return out.String(), st
}

func requireState(t *testing.T, h Harness, name string, want container.State) {
	t.Helper()
	st, err := h.Runtime.State(context.Background(), name)
	require.NoError(t, err)
	require.Equal(t, want, st)
}

func testLifecycle(t *testing.T, h Harness) {
	ctx := context.Background()
	name := Name(t)
	requireState(t, h, name, container.StateAbsent)
	require.NoError(t, h.Runtime.Create(ctx, name, h.Config(t)))
	t.Cleanup(func() { _ = h.Runtime.Destroy(context.Background(), name) })
	requireState(t, h, name, container.StateStopped)
	names, err := h.Runtime.List(ctx)
	require.NoError(t, err)
	assert.Contains(t, names, name)

	require.NoError(t, h.Runtime.Start(ctx, name))
	requireState(t, h, name, container.StateRunning)
	out, st := sh(t, h, name, "echo hello", "PATH=/bin")
	assert.Equal(t, "hello\n", out)
	assert.True(t, st.Success())

	require.NoError(t, h.Runtime.Stop(ctx, name))
	requireState(t, h, name, container.StateStopped)
	require.NoError(t, h.Runtime.Destroy(ctx, name))
	requireState(t, h, name, container.StateAbsent)
	names, err = h.Runtime.List(ctx)
	require.NoError(t, err)
	assert.NotContains(t, names, name)
}

// testExecEnv: the command's environment is exactly what was asked for,
// nothing of the host's or the runtime's.
func testExecEnv(t *testing.T, h Harness) {
	name := started(t, h)
	out, st := sh(t, h, name, `echo "$A|$B|${HOME-unset}|${container-unset}|$PATH"`, "A=1", "B=two words", "PATH=/bin:/usr/bin")
	assert.True(t, st.Success(), out)
	assert.Equal(t, "1|two words|unset|unset|/bin:/usr/bin\n", out)
}

func testExecStreams(t *testing.T, h Harness) {
	name := started(t, h)
	var stdout, stderr bytes.Buffer
	st, err := h.Runtime.Exec(context.Background(), name, container.ExecOptions{
		Argv: []string{"/bin/sh", "-c", "cat; echo to-err >&2"}, Env: []string{"PATH=/bin"},
		Stdin: strings.NewReader("from stdin\n"), Stdout: &stdout, Stderr: &stderr,
	})
	require.NoError(t, err)
	assert.True(t, st.Success())
	assert.Equal(t, "from stdin\n", stdout.String())
	assert.Equal(t, "to-err\n", stderr.String())
}

func testExecExitStatus(t *testing.T, h Harness) {
	name := started(t, h)
	_, st := sh(t, h, name, "exit 7", "PATH=/bin")
	assert.Equal(t, container.ExitStatus{Code: 7}, st)
	assert.False(t, st.Success())
	_, st = sh(t, h, name, "kill -9 $$", "PATH=/bin")
	assert.Equal(t, container.ExitStatus{Code: 137, Signal: syscall.SIGKILL}, st)
	assert.Equal(t, "killed by signal 9 (killed)", st.String())
}

func testExecCwd(t *testing.T, h Harness) {
	name := started(t, h)
	var out bytes.Buffer
	st, err := h.Runtime.Exec(context.Background(), name, container.ExecOptions{
		Argv: []string{"/bin/sh", "-c", "pwd"}, Env: []string{"PATH=/bin"}, Cwd: "/tmp", Stdout: &out,
	})
	require.NoError(t, err)
	assert.True(t, st.Success())
	assert.Equal(t, "/tmp\n", out.String())
}

func testExecConcurrent(t *testing.T, h Harness) {
	name := started(t, h)
	var wg sync.WaitGroup
	outs := make([]string, 4)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			st, err := h.Runtime.Exec(context.Background(), name, container.ExecOptions{
				Argv: []string{"/bin/sh", "-c", "sleep 0.2; echo $N"}, Env: []string{"PATH=/bin", "N=" + string(rune('a'+i))}, Stdout: &out,
			})
			if assert.NoError(t, err) {
				assert.True(t, st.Success())
			}
			outs[i] = out.String()
		}()
	}
	wg.Wait()
	assert.Equal(t, []string{"a\n", "b\n", "c\n", "d\n"}, outs)
}

// testStopEndsExec: Stop kills every process, so a running Exec returns.
func testStopEndsExec(t *testing.T, h Harness) {
	name := started(t, h)
	done := make(chan container.ExitStatus, 1)
	go func() {
		st, _ := h.Runtime.Exec(context.Background(), name, container.ExecOptions{
			Argv: []string{"/bin/sh", "-c", "sleep 600"}, Env: []string{"PATH=/bin"},
		})
		done <- st
	}()
	time.Sleep(300 * time.Millisecond) // let it start
	require.NoError(t, h.Runtime.Stop(context.Background(), name))
	select {
	case st := <-done:
		assert.False(t, st.Success(), "a killed command does not succeed")
	case <-time.After(30 * time.Second):
		t.Fatal("Exec still running 30s after Stop")
	}
	requireState(t, h, name, container.StateStopped)
}

func testSentinels(t *testing.T, h Harness) {
	ctx := context.Background()
	absent := Name(t)
	assert.ErrorIs(t, h.Runtime.Start(ctx, absent), container.ErrNotFound)
	_, err := h.Runtime.Exec(ctx, absent, container.ExecOptions{Argv: []string{"/bin/true"}})
	assert.ErrorIs(t, err, container.ErrNotFound)

	name := Name(t)
	cfg := h.Config(t)
	require.NoError(t, h.Runtime.Create(ctx, name, cfg))
	t.Cleanup(func() { _ = h.Runtime.Destroy(context.Background(), name) })
	err = h.Runtime.Create(ctx, name, cfg)
	assert.ErrorIs(t, err, container.ErrExists)
	if err != nil {
		assert.Contains(t, err.Error(), name, "the error names the container")
	}
	_, err = h.Runtime.Exec(ctx, name, container.ExecOptions{Argv: []string{"/bin/true"}})
	assert.ErrorIs(t, err, container.ErrNotRunning, "exec in a stopped container")
}

func testIdempotent(t *testing.T, h Harness) {
	ctx := context.Background()
	absent := Name(t)
	assert.NoError(t, h.Runtime.Stop(ctx, absent), "stop of an absent container")
	assert.NoError(t, h.Runtime.Destroy(ctx, absent), "destroy of an absent container")
	name := started(t, h)
	require.NoError(t, h.Runtime.Stop(ctx, name))
	assert.NoError(t, h.Runtime.Stop(ctx, name), "stop of a stopped container")
	require.NoError(t, h.Runtime.Destroy(ctx, name))
	assert.NoError(t, h.Runtime.Destroy(ctx, name), "destroy twice")
	names, err := h.Runtime.List(ctx)
	require.NoError(t, err)
	assert.False(t, slices.Contains(names, name))
}

// testDestroyKeepsRootDir: a root directory belongs to storage.
func testDestroyKeepsRootDir(t *testing.T, h Harness) {
	cfg := h.Config(t)
	if cfg.Root.Dir == "" {
		t.Skip("the runtime makes roots from images")
	}
	ctx := context.Background()
	name := Name(t)
	require.NoError(t, h.Runtime.Create(ctx, name, cfg))
	require.NoError(t, h.Runtime.Start(ctx, name))
	require.NoError(t, h.Runtime.Destroy(ctx, name))
	_, err := os.Stat(cfg.Root.Dir + "/bin/sh")
	assert.NoError(t, err, "Destroy removed the root directory it was given")
}
