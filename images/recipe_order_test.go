package images

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/spec"
)

// oldFile is how Key encodes a file.
type oldFile struct {
	Target string `json:"target"`
	Mode   uint32 `json:"mode"`
	SHA256 string `json:"sha256"`
}

// TestRecipeKeyOrderInputs: hooks before packages, repositories (with
// their keys' contents) and recommends are inputs of the cache key; a
// recipe without them keeps the key it had before they existed.
func TestRecipeKeyOrderInputs(t *testing.T) {
	base := &Image{Fingerprint: "aaaa"}
	key := func(def spec.Image) string {
		t.Helper()
		r, err := LoadRecipe(def, base)
		require.NoError(t, err)
		k, err := r.Key()
		require.NoError(t, err)
		return k
	}
	dir := t.TempDir()
	def := recipeDef(t, dir)
	plain := key(def)
	// The key as stint computed it before these keys existed.
	old, err := buildKey("recipe", recipeBuilderVersion, "aaaa", []string{"gcc", "make"},
		[]string{sha256Hex([]byte("echo one\n")), sha256Hex([]byte("echo two\n"))},
		[]oldFile{
			{"/etc/motd", 0o644, sha256Hex([]byte("hi\n"))},
			{"/usr/local/bin/x", 0o644, sha256Hex([]byte("#!/bin/sh\n"))},
		}, def.Properties)
	require.NoError(t, err)
	assert.Equal(t, old, plain, "a recipe without the new keys is not rebuilt")

	before := def
	before.HooksBeforePackages, before.Hooks = def.Hooks[:1], def.Hooks[1:]
	assert.NotEqual(t, plain, key(before), "a hook moved before the packages")

	no, yes := false, true
	withRec := def
	withRec.Recommends = &no
	assert.NotEqual(t, plain, key(withRec))
	withRec.Recommends = &yes
	assert.NotEqual(t, key(withRec), func() string { d := def; d.Recommends = &no; return key(d) }())

	repo := spec.Repository{Name: "vendor", URI: "http://apt.example.org/debian", Suite: "bookworm", Components: []string{"main"},
		Key: writeFile(t, dir, "vendor.asc", []byte("key one"))}
	withRepo := def
	withRepo.Repositories = []spec.Repository{repo}
	k1 := key(withRepo)
	assert.NotEqual(t, plain, k1)
	writeFile(t, dir, "vendor.asc", []byte("key two"))
	assert.NotEqual(t, k1, key(withRepo), "the key file's contents")
	withRepo.Repositories[0].Suite = "trixie"
	assert.NotEqual(t, k1, key(withRepo))

	r, err := LoadRecipe(withRepo, base)
	require.NoError(t, err)
	require.Len(t, r.Repositories, 1)
	assert.Equal(t, []byte("key two"), r.Repositories[0].KeyData)
}
