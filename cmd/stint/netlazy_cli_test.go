package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	stintnet "github.com/stintdev/stint/net"
)

// TestCLINetStateNotADirectory: with the host-wide network state directory
// unusable (STINT_NET_STATE naming a file), a job without a network still
// passes, and a bridged one fails as a host failure (exit 3) naming it.
func TestCLINetStateNotADirectory(t *testing.T) {
	f := newCLI(t)
	file := filepath.Join(t.TempDir(), "net-state")
	require.NoError(t, os.WriteFile(file, []byte("not a directory\n"), 0o644))
	p := f.spec(t, `
[job.offline]
image = "busybox"
network = "none"
run = ["echo offline"]

[job.bridged]
image = "busybox"
network = "bridge"
run = ["echo bridged"]
`)
	env := append(os.Environ(), stintnet.StateDirEnv+"="+file)
	c := f.cmd("run", p, "offline")
	c.Env = env
	out, err := c.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "[offline] offline")
	c = f.cmd("run", p, "bridged")
	c.Env = env
	out, err = c.CombinedOutput()
	require.Error(t, err, "%s", out)
	assert.Equal(t, 3, c.ProcessState.ExitCode(), "%s", out)
	assert.Contains(t, string(out), file)
	assert.NotContains(t, string(out), "[bridged] bridged")
	f.assertClean(t)
}
