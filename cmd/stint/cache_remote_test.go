package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/lxdenv"
)

// TestRemoteCacheCommitRefused: on a remote, whose cache volumes are LXD
// custom volumes shared and written in place, a cache mount's commit key is
// refused before any job starts: exit 2 naming the spec file, line, job
// and mount, and nothing made on the remote.
func TestRemoteCacheCommitRefused(t *testing.T) {
	f := newCLI(t)
	d := lxdenv.StartDaemon(t)
	out, code := f.run(t, "remote", "add", "l", "unix://"+d.Socket)
	require.Equal(t, 0, code, out)
	p := f.spec(t, `
[job.plain]
image = "busybox"
run = ["echo plain-ran"]

[job.asks]
image = "busybox"
run = ["echo asks-ran"]
mount = [{ type = "cache", name = "c", target = "/c", commit = "never" }]
`)
	out, code = f.run(t, "--remote", "l", "run", p)
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, p+":11: job asks: cache mount /c: commit needs stint's own storage pool; remote l")
	assert.NotContains(t, out, "plain-ran", "a job ran before the refusal")
	assert.Empty(t, lxcList(t, d), "an instance was made on the remote")
}
