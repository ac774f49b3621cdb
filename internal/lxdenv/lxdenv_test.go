package lxdenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDaemon: a private daemon answers on its socket and on HTTPS, has its
// pool and issues trust tokens; after the test nothing of it is left.
func TestDaemon(t *testing.T) {
	Requires(t)
	var d *Daemon
	t.Run("up", func(t *testing.T) {
		d = StartDaemon(t)
		assert.Contains(t, d.MustLxc(t, "storage", "list", "-f", "csv"), "default,dir")
		assert.NotContains(t, d.MustLxc(t, "network", "list", "-f", "csv"), ",YES,", "no managed network")
		c, err := net.Dial("tcp", strings.TrimPrefix(d.URL, "https://"))
		require.NoError(t, err)
		c.Close()
		assert.NotEmpty(t, d.TrustToken(t, "lxdenv-test"))
	})
	require.NotNil(t, d)
	_, err := os.Stat(d.Dir)
	assert.ErrorIs(t, err, os.ErrNotExist, "the daemon's directory is gone")
	m, err := mountsUnder(d.Dir)
	require.NoError(t, err)
	assert.Empty(t, m)
	if d.cmd != nil && d.cmd.ProcessState != nil {
		assert.True(t, d.cmd.ProcessState.Exited() || !d.cmd.ProcessState.Success())
	}
}

func TestUnescape(t *testing.T) {
	assert.Equal(t, "/a b/c", unescape(`/a\040b/c`))
	assert.Equal(t, "/plain", unescape("/plain"))
}

// TestCluster: three members form one cluster and answer on their own
// addresses; after the test nothing of it is left (dirs, namespaces,
// bridge).
func TestCluster(t *testing.T) {
	Requires(t)
	var c *Cluster
	t.Run("up", func(t *testing.T) {
		c = StartCluster(t)
		out := c.Members[0].MustLxc(t, "cluster", "list", "-f", "csv")
		for _, m := range c.Members {
			assert.Contains(t, out, m.Name+","+m.URL)
		}
		assert.Contains(t, c.Members[2].MustLxc(t, "storage", "list", "-f", "csv"), "local,dir")
	})
	require.NotNil(t, c)
	for _, m := range c.Members {
		_, err := os.Stat(m.Dir)
		assert.ErrorIs(t, err, os.ErrNotExist)
	}
	_, err := net.InterfaceByName(c.Prefix + "br0")
	assert.Error(t, err, "the bridge is gone")
	_, err = os.Stat("/run/netns/" + c.Prefix + "1")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestClusterHelper forms a cluster and waits to be killed (run by
// TestClusterSweep as a separate process).
func TestClusterHelper(t *testing.T) {
	if os.Getenv("STINT_LXDENV_CLUSTER_HELPER") == "" {
		t.Skip("run by TestClusterSweep")
	}
	c := StartCluster(t)
	fmt.Println("up", c.Prefix)
	time.Sleep(10 * time.Minute)
}

// TestClusterSweep: a test process killed with its cluster up (no
// cleanup ran) leaves a cluster that the next StartCluster tears down.
func TestClusterSweep(t *testing.T) {
	Requires(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestClusterHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "STINT_LXDENV_CLUSTER_HELPER=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var prefix string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "up "); ok {
			prefix = p
			break
		}
	}
	require.NotEmpty(t, prefix, "the helper's cluster came up")
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	_, err = os.Stat("/var/lib/" + prefix + "-c1")
	require.NoError(t, err, "the killed helper left its cluster")

	StartCluster(t)
	for i := 1; i <= 3; i++ {
		_, err = os.Stat(fmt.Sprintf("/var/lib/%s-c%d", prefix, i))
		assert.ErrorIs(t, err, os.ErrNotExist)
	}
	_, err = net.InterfaceByName(prefix + "br0")
	assert.Error(t, err, "the dead cluster's bridge is gone")
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"scripts-*"))
	assert.Len(t, left, 1, "only this test's scripts are left: %v", left)
}

// TestDaemonHelper starts a daemon and waits to be killed (run by
// TestDaemonSweep as a separate process).
func TestDaemonHelper(t *testing.T) {
	if os.Getenv("STINT_LXDENV_DAEMON_HELPER") == "" {
		t.Skip("run by TestDaemonSweep")
	}
	d := StartDaemon(t)
	fmt.Println("up", d.Dir)
	time.Sleep(10 * time.Minute)
}

// TestDaemonSweep: a daemon whose test process was killed is shut down
// and removed by the next StartDaemon.
func TestDaemonSweep(t *testing.T) {
	Requires(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestDaemonHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "STINT_LXDENV_DAEMON_HELPER=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "up "); ok {
			dir = p
			break
		}
	}
	require.NotEmpty(t, dir)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	pid, err := readPid(dir + "/lxd.pid")
	require.NoError(t, err)
	require.True(t, alive(pid), "the killed helper left its lxd running")

	StartDaemon(t)
	_, err = os.Stat(dir)
	assert.ErrorIs(t, err, os.ErrNotExist, "the dead test's daemon directory is gone")
	assert.Eventually(t, func() bool { return !alive(pid) }, 30*time.Second, 100*time.Millisecond, "its lxd is gone")
}
