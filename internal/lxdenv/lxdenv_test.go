package lxdenv

import (
	"net"
	"os"
	"strings"
	"testing"

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
