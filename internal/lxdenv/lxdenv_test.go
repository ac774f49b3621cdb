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
