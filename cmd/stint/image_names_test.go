package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/images"
)

// TestCLISpecImageNames, through the binary: images built for a spec are
// named SET/NAME, the bare NAME works while it is unique, a rebuild marks
// the old build superseded and image prune removes it, another set never
// takes the name, and an alias with ':' is refused.
func TestCLISpecImageNames(t *testing.T) {
	f := newCLI(t)
	hook := filepath.Join(f.dir, "hook.sh")
	writeHook := func(v string) {
		require.NoError(t, os.WriteFile(hook, []byte("echo "+v+" > /etc/v\n"), 0o644))
	}
	p := filepath.Join(f.dir, "stint.toml")
	require.NoError(t, os.WriteFile(p, []byte(`version = 1
name = "first"
[storage]
driver = "overlay"
[image.bb]
builder = "busybox"
[image.ci]
from = "bb"
hooks = ["hook.sh"]
`), 0o644))
	list := func() map[string]images.Image { return imagesByName(t, f) }

	writeHook("one")
	out, code := f.run(t, "image", "build", p)
	require.Equal(t, 0, code, out)
	imgs := list()
	require.Contains(t, imgs, "first/bb")
	require.Contains(t, imgs, "first/ci")
	v1 := imgs["first/ci"].Fingerprint
	out, code = f.run(t, "exec", "ci", "--", "cat", "/etc/v")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "one")
	out, code = f.run(t, "image", "info", "bb")
	assert.Equal(t, 0, code, "the bare name resolves: %s", out)

	// A changed recipe: the name moves, the old build is marked.
	writeHook("two")
	out, code = f.run(t, "image", "build", p, "ci")
	require.Equal(t, 0, code, out)
	imgs = list()
	v2 := imgs["first/ci"].Fingerprint
	require.NotEqual(t, v1, v2)
	assert.Empty(t, imgs[v1].Aliases)
	assert.Equal(t, v2, imgs[v1].Properties[images.SupersededProperty])
	out, code = f.run(t, "exec", "ci", "--", "cat", "/etc/v")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "two")

	// Another set with an image ci: its own name; the bare name is now
	// ambiguous (exit 2, naming both), the scoped ones work.
	other := filepath.Join(f.dir, "other")
	require.NoError(t, os.Mkdir(other, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(other, "stint.toml"), []byte(`version = 1
name = "second"
[storage]
driver = "overlay"
[image.base]
builder = "busybox"
[image.ci]
from = "base"
properties = { description = "the other ci" }
`), 0o644))
	out, code = f.run(t, "image", "build", filepath.Join(other, "stint.toml"))
	require.Equal(t, 0, code, out)
	imgs = list()
	assert.Equal(t, v2, imgs["first/ci"].Fingerprint, "another set never takes first's name")
	require.Contains(t, imgs, "second/ci")
	out, code = f.run(t, "exec", "ci", "--", "true")
	assert.Equal(t, ExitUsage, code, out)
	assert.Contains(t, out, "first/ci")
	assert.Contains(t, out, "second/ci")
	out, code = f.run(t, "exec", "first/ci", "--", "cat", "/etc/v")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "two")

	// prune removes the superseded build, and nothing named.
	out, code = f.run(t, "image", "prune")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "deleted "+v1[:12])
	imgs = list()
	assert.NotContains(t, imgs, v1)
	for _, a := range []string{"first/bb", "first/ci", "second/base", "second/ci"} {
		assert.Contains(t, imgs, a)
	}

	// ':' separates a remote from its alias: refused in a new alias.
	out, code = f.run(t, "image", "alias", "add", "local:bb", v2)
	assert.Equal(t, ExitUsage, code, out)
	assert.Contains(t, out, "REMOTE:ALIAS")
	f.assertClean(t)
}

// imagesByName is `image list` by fingerprint and by alias.
func imagesByName(t *testing.T, f *cliFixture) map[string]images.Image {
	t.Helper()
	out, code := f.run(t, "--json", "image", "list")
	require.Equal(t, 0, code, out)
	var imgs []images.Image
	require.NoError(t, json.Unmarshal([]byte(out), &imgs), out)
	byName := map[string]images.Image{}
	for _, img := range imgs {
		byName[img.Fingerprint] = img
		for _, a := range img.Aliases {
			byName[a] = img
		}
	}
	return byName
}
