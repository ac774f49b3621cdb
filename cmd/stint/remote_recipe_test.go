package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/lxdenv"
)

// TestRemoteRecipe: a job on a remote whose image is a recipe ([image.X]
// from = ...): the recipe is built on this host's LXC as without
// --remote, the result uploaded once by its fingerprint (the remote knows
// it by the same one) and reused by the next run, which builds nothing;
// the local build container is torn down, and no instance is left on the
// remote.
func TestRemoteRecipe(t *testing.T) {
	f := newCLI(t)
	d := lxdenv.StartDaemon(t)
	out, code := f.run(t, "remote", "add", "l", "unix://"+d.Socket)
	require.Equal(t, 0, code, out)
	require.NoError(t, os.CopyFS(filepath.Join(f.dir, "recipes"), os.DirFS("../../testdata/recipes")))
	p := f.spec(t, `
[image.custom]
from = "busybox"
hooks = ["recipes/hooks/01-setup.sh", "recipes/hooks/02-check.sh"]
files = { "/etc/motd" = "recipes/files/motd", "/usr/local/bin/hello" = "recipes/files/hello" }

[job.use]
image = "custom"
run = ["cat /etc/hooked", "ls -ld /home/u | awk '{print $3}'"]
`)
	out, code = f.run(t, "--remote", "l", "-v", "run", p)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "[image custom] hook ran in custom")
	assert.Contains(t, out, "[use] from-hook")
	assert.Contains(t, out, "[use] 1000", "the recipe's owners survive publish and upload")

	out, code = f.run(t, "image", "list")
	require.Equal(t, 0, code, out)
	fp := regexp.MustCompile(`([0-9a-f]{12})\s+custom \(recipe`).FindStringSubmatch(out)
	require.NotNil(t, fp, out)
	remote := d.MustLxc(t, "image", "list", "-f", "csv", "-c", "f")
	assert.Contains(t, remote, fp[1], "the remote knows the recipe by the store's fingerprint")
	n := len(strings.Fields(remote))

	out, code = f.run(t, "--remote", "l", "-v", "run", p)
	require.Equal(t, 0, code, out)
	assert.NotContains(t, out, "hook ran", "a cache hit builds nothing")
	assert.Len(t, strings.Fields(d.MustLxc(t, "image", "list", "-f", "csv", "-c", "f")), n, "uploaded once")
	assert.Empty(t, lxcList(t, d), "no instance left on the remote")
	f.assertClean(t)
}
