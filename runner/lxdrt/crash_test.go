package lxdrt_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	lxd "github.com/canonical/lxd/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/lxdenv"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/lxdrt"
)

// crashHelper is a stand-in for a stint process (this test binary, run
// again): it starts a job's instance tagged with its host and pid, says
// "ready NAME", and runs a long command until it is killed.
func crashHelper(sock, owner, fp string) int {
	ctx := context.Background()
	c, err := lxd.ConnectLXDUnix(sock, nil)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	rt, err := lxdrt.New(c, lxdrt.Options{Remote: "t", Owner: owner})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	host, _ := os.Hostname()
	name := fmt.Sprintf("crash-%d", os.Getpid())
	err = rt.CreateWith(ctx, name, container.Config{Root: container.Root{Image: &container.ImageRef{Fingerprint: fp}}},
		lxdrt.CreateOptions{Tags: map[string]string{lxdrt.TagHost: host, lxdrt.TagPid: strconv.Itoa(os.Getpid()), "job": "crash"}})
	if err == nil {
		err = rt.Start(ctx, name)
	}
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("ready", name)
	_, _ = rt.Exec(ctx, name, container.ExecOptions{Argv: []string{"/bin/sleep", "600"}})
	return 0
}

// TestKill9ThenGC: a stint process killed with SIGKILL mid-job leaves its
// instance running; GC by tags finds it (its pid is gone) and removes it,
// and keeps the instance of a process that is alive.
func TestKill9ThenGC(t *testing.T) {
	d := lxdenv.StartDaemon(t)
	c := connect(t, d)
	owner := fmt.Sprintf("test:%s:%d", t.Name(), os.Getpid())
	rt := runtime(t, c, lxdrt.Options{Owner: owner})
	ctx := context.Background()
	img := busybox(t)
	// The helper only names the image: upload it here.
	probe := run(t, rt, container.Config{Root: container.Root{Image: img}}, lxdrt.CreateOptions{
		Tags: map[string]string{lxdrt.TagPid: strconv.Itoa(os.Getpid()), lxdrt.TagHost: hostname()}})

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STINT_LXDRT_CRASH_SOCKET="+d.Socket, "STINT_LXDRT_CRASH_OWNER="+owner, "STINT_LXDRT_CRASH_IMAGE="+img.Fingerprint)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "ready "), line)
	crashed := strings.TrimSpace(strings.TrimPrefix(line, "ready "))
	time.Sleep(300 * time.Millisecond) // mid-exec
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	st, err := rt.State(ctx, crashed)
	require.NoError(t, err)
	require.Equal(t, container.StateRunning, st, "a kill -9 leaves the instance behind")
	insts, err := rt.Instances(ctx)
	require.NoError(t, err)
	for _, i := range insts {
		if i.Name == crashed {
			assert.True(t, i.Ephemeral, "a job's instance is ephemeral while it runs")
			assert.Equal(t, "crash", i.Tags["job"])
		}
	}
	gone, err := rt.GC(ctx, func(i lxdrt.Instance) bool { return !lxdrt.Orphaned(i) })
	require.NoError(t, err)
	assert.Equal(t, []string{crashed}, gone)
	st, err = rt.State(ctx, crashed)
	require.NoError(t, err)
	assert.Equal(t, container.StateAbsent, st)
	st, err = rt.State(ctx, probe)
	require.NoError(t, err)
	assert.Equal(t, container.StateRunning, st, "a live process's instance is kept")
}

func hostname() string { h, _ := os.Hostname(); return h }
