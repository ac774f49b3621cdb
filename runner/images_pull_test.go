package runner_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/simplestreams"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/remote"
	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// busyboxStore is an image store under a fresh root (root/images) with a
// busybox image aliased alias.
func busyboxStore(t *testing.T, alias string) (root string, s *images.Store, img *images.Image) {
	t.Helper()
	testenv.RequiresTool(t, "busybox")
	root = t.TempDir()
	s, err := images.Open(filepath.Join(root, "images"))
	require.NoError(t, err)
	img, err = images.BuildBusybox(t.Context(), s, images.BusyboxOptions{Aliases: []string{alias}})
	require.NoError(t, err)
	return root, s, img
}

// ageImages makes every image of s look imported (and never used) a day ago.
func ageImages(t *testing.T, s *images.Store) {
	t.Helper()
	p := filepath.Join(s.Dir(), "index.json")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	var ix map[string]any
	require.NoError(t, json.Unmarshal(b, &ix))
	for _, img := range ix["images"].([]any) {
		m := img.(map[string]any)
		m["uploaded_at"] = time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)
		delete(m, "last_used_at")
	}
	b, err = json.Marshal(ix)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, b, 0o600))
}

// TestResolveTouches (issue 18): resolving an image for a job records its
// use, so `image prune --unused-for 1h` keeps an image used seconds ago
// even though it was imported long before; a second resolve (cached by
// the resolver) touches it again.
func TestResolveTouches(t *testing.T) {
	_, s, img := busyboxStore(t, "bb")
	ageImages(t, s)
	old, err := s.Resolve("bb")
	require.NoError(t, err)
	require.True(t, images.PruneOptions{UnusedFor: time.Hour}.Prunable(old), "the aged image is prunable before use")

	si := &runner.StoreImages{Store: s}
	got, err := si.ResolveImage(t.Context(), "bb")
	require.NoError(t, err)
	assert.Equal(t, img.Fingerprint, got.Fingerprint)
	used, err := s.Resolve("bb")
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), used.LastUsed, 5*time.Second)
	pruned, err := s.Prune(images.PruneOptions{UnusedFor: time.Hour})
	require.NoError(t, err)
	assert.Empty(t, pruned, "an image used seconds ago is kept")

	ageImages(t, s)
	_, err = si.ResolveImage(t.Context(), "bb")
	require.NoError(t, err)
	used, err = s.Resolve("bb")
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), used.LastUsed, 5*time.Second, "a cached resolve touches too")
}

// TestResolvePullRef: a job's "REMOTE:ALIAS" image is pulled from the
// simplestreams remote on first use (here another store served on
// loopback), then found in the store by its source without the remote: a
// resolver of a later run resolves it with the server gone.
func TestResolvePullRef(t *testing.T) {
	_, src, img := busyboxStore(t, "heldout/bb")
	srv := httptest.NewServer(simplestreams.NewHandler(src))
	defer srv.Close()

	root := t.TempDir()
	rs, err := remote.Open(root)
	require.NoError(t, err)
	_, err = rs.Add(t.Context(), "ss", srv.URL, remote.AddOptions{Protocol: remote.ProtocolSimplestreams})
	require.NoError(t, err)
	s, err := images.Open(filepath.Join(root, "images"))
	require.NoError(t, err)
	assert.True(t, runner.IsPullRef(root, "ss:heldout/bb"))
	assert.False(t, runner.IsPullRef(root, "nosuch:heldout/bb"))
	assert.False(t, runner.IsPullRef(root, "heldout/bb"))

	got, err := (&runner.StoreImages{Store: s}).ResolveImage(t.Context(), "ss:heldout/bb")
	require.NoError(t, err)
	assert.Equal(t, img.Fingerprint, got.Fingerprint)
	srv.Close()
	got, err = (&runner.StoreImages{Store: s}).ResolveImage(t.Context(), "ss:heldout/bb")
	require.NoError(t, err, "cached: the remote is not asked again")
	assert.Equal(t, img.Fingerprint, got.Fingerprint)
	all, err := s.List()
	require.NoError(t, err)
	assert.Len(t, all, 1)
}

// TestResolveImageSourcePull: an [image.base] with source = "ss:heldout/bb"
// resolves by pulling; image build of it adds the asked aliases.
func TestResolveImageSourcePull(t *testing.T) {
	_, src, img := busyboxStore(t, "heldout/bb")
	srv := httptest.NewServer(simplestreams.NewHandler(src))
	defer srv.Close()
	root := t.TempDir()
	rs, err := remote.Open(root)
	require.NoError(t, err)
	_, err = rs.Add(t.Context(), "ss", srv.URL, remote.AddOptions{Protocol: remote.ProtocolSimplestreams})
	require.NoError(t, err)
	s, err := images.Open(filepath.Join(root, "images"))
	require.NoError(t, err)
	si := &runner.StoreImages{Store: s, Set: &spec.Set{Images: []spec.Image{{Name: "base", Pull: "ss:heldout/bb"}}}}
	got, err := si.ResolveImage(t.Context(), "base")
	require.NoError(t, err)
	assert.Equal(t, img.Fingerprint, got.Fingerprint)
	built, err := si.Build(t.Context(), "base", []string{"mine"})
	require.NoError(t, err)
	assert.Equal(t, img.Fingerprint, built.Fingerprint)
	assert.Contains(t, built.Aliases, "mine")
}

// TestResolveUnknownRemote: REMOTE:ALIAS with no such remote is a local
// alias that the store lacks (ErrNotFound), and looking for the remote
// creates nothing under the root.
func TestResolveUnknownRemote(t *testing.T) {
	root := t.TempDir()
	s, err := images.Open(filepath.Join(root, "images"))
	require.NoError(t, err)
	_, err = (&runner.StoreImages{Store: s}).ResolveImage(t.Context(), "nosuch:heldout/bb")
	require.ErrorIs(t, err, images.ErrNotFound, "not a remote: a local alias that is not there")
	_, err = os.Stat(filepath.Join(root, "remotes"))
	assert.ErrorIs(t, err, os.ErrNotExist, "resolving creates no remote store")
}
