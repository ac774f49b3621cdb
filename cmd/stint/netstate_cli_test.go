package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	stintnet "github.com/stintdev/stint/net"
)

// TestCLINoNetworkIgnoresNetState: a job with network "none" never reads the
// host-wide network state, so an unreadable one (a directory where
// state.json should be) cannot fail it.
func TestCLINoNetworkIgnoresNetState(t *testing.T) {
	f := newCLI(t)
	netDir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(netDir, "state.json"), 0o755))
	p := f.spec(t, `
[job.offline]
image = "busybox"
network = "none"
run = ["echo offline"]
`)
	c := f.cmd("run", p)
	c.Env = append(os.Environ(), stintnet.StateDirEnv+"="+netDir)
	out, err := c.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "PASSED")
	f.assertClean(t)
}
