package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLIImageBuildRecipe: `stint image build FILE NAME` builds a recipe,
// a second time from the cache; a failing hook exits 1.
func TestCLIImageBuildRecipe(t *testing.T) {
	f := newCLI(t)
	require.NoError(t, os.CopyFS(filepath.Join(f.dir, "recipes"), os.DirFS("../../testdata/recipes")))
	p := f.spec(t, `
[image.custom]
from = "busybox"
hooks = ["recipes/hooks/01-setup.sh", "recipes/hooks/02-check.sh"]
files = { "/etc/motd" = "recipes/files/motd", "/usr/local/bin/hello" = "recipes/files/hello" }

[image.broken]
from = "custom"
hooks = ["recipes/hooks/fail.sh"]

[job.on-broken]
image = "broken"
run = ["true"]
`)
	out, code := f.run(t, "image", "build", "-v", p, "custom")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "[image custom] hook ran in custom\n")
	assert.Regexp(t, `(?m)^custom: [0-9a-f]{64}$`, out)
	fp := out[strings.Index(out, "custom: ")+len("custom: "):][:64]

	out, code = f.run(t, "image", "build", "-v", p, "custom")
	require.Equal(t, 0, code, out)
	assert.Equal(t, "custom: "+fp+"\n", out, "a cache hit builds nothing")

	out, code = f.run(t, "image", "build", p, "broken")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "\n    | about to fail\n", "the build log's last lines")
	assert.Contains(t, out, "image broken: hook 1 ")
	assert.Contains(t, out, "fail.sh: exit 3")

	// A job whose recipe image fails to build failed (exit 1): the user's
	// hook, not the host (exit 3).
	out, code = f.run(t, "run", p, "on-broken")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "fail.sh: exit 3")
	f.assertClean(t)
}
