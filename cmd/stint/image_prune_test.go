package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/imagetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ageIndex makes every image of the store under root look imported, and
// last used, a day ago.
func ageIndex(t *testing.T, root string) {
	t.Helper()
	p := filepath.Join(root, "images", "index.json")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	var ix map[string]any
	require.NoError(t, json.Unmarshal(b, &ix))
	day := time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)
	for _, img := range ix["images"].([]any) {
		m := img.(map[string]any)
		m["uploaded_at"], m["last_used_at"] = day, day
	}
	b, err = json.Marshal(ix)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, b, 0o600))
}

// TestCLIPruneKeepsUsedImages (issue 18): `image prune --unused-for 4s`
// keeps an image made long before and used a second ago, and deletes an
// old unused one; an image a kept container was made from is kept however
// long unused, until gc removes the container.
func TestCLIPruneKeepsUsedImages(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.ok]
image = "busybox"
run = ["true"]
[job.broken]
image = "busybox"
run = ["exit 1"]
`)
	got, code := f.run(t, "image", "build", p, "busybox")
	require.Equal(t, 0, code, got)
	s, err := images.Open(filepath.Join(f.root, "images"))
	require.NoError(t, err)
	all, err := s.List()
	require.NoError(t, err)
	require.Len(t, all, 1)
	bb := all[0]
	old := imagetest.Restamp(t, s, bb, time.Unix(1600000000, 0), map[string]string{"etc/old": "x"}, "old")
	ageIndex(t, f.root)

	got, code = f.run(t, "run", p, "ok")
	require.Equal(t, 0, code, got)
	time.Sleep(time.Second)
	got, code = f.run(t, "image", "prune", "--unused-for", "4s")
	require.Equal(t, 0, code, got)
	assert.Contains(t, got, "deleted "+old.Fingerprint[:12])
	assert.NotContains(t, got, bb.Fingerprint[:12], "used a second ago: kept")

	got, code = f.run(t, "run", p, "broken", "--keep-on-failure")
	require.Equal(t, 1, code, got)
	ageIndex(t, f.root)
	got, code = f.run(t, "image", "prune", "--unused-for", "1s")
	require.Equal(t, 0, code, got)
	assert.NotContains(t, got, "deleted", "a kept container's image is in use")
	_, err = s.Resolve(bb.Fingerprint)
	require.NoError(t, err)

	got, code = f.run(t, "gc", "--kept")
	require.Equal(t, 0, code, got)
	got, code = f.run(t, "image", "prune", "--unused-for", "1s")
	require.Equal(t, 0, code, got)
	assert.Contains(t, got, "deleted "+bb.Fingerprint[:12])
	f.assertClean(t)
}
