package runner_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/imagetest"
	"github.com/stintdev/stint/images/simplestreams"
	"github.com/stintdev/stint/remote"
	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// servedStore serves src as a simplestreams remote on loopback, counting
// index requests, and adds it to a fresh root as remote "ss".
func servedStore(t *testing.T, src *images.Store) (root string, s *images.Store, srv *httptest.Server, asked *atomic.Int32) {
	t.Helper()
	asked = &atomic.Int32{}
	h := simplestreams.NewHandler(src)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/streams/") {
			asked.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	root = t.TempDir()
	rs, err := remote.Open(root)
	require.NoError(t, err)
	_, err = rs.Add(t.Context(), "ss", srv.URL, remote.AddOptions{Protocol: remote.ProtocolSimplestreams})
	require.NoError(t, err)
	s, err = images.Open(filepath.Join(root, "images"))
	require.NoError(t, err)
	return root, s, srv, asked
}

// TestResolveAutoUpdate: an image pulled on use auto-updates. Within its
// refresh interval the remote is not asked; once it has passed, a newer
// version on the remote (a later serial) is pulled and used, the local
// aliases move to it and the old image stays; with nothing newer only the
// check time is recorded; auto_update = false never asks.
func TestResolveAutoUpdate(t *testing.T) {
	_, src, old := busyboxStore(t, "heldout/bb")
	_, s, _, asked := servedStore(t, src)
	def := spec.Image{Name: "base", Pull: "ss:heldout/bb"}
	resolve := func(d spec.Image, refresh time.Duration) string {
		t.Helper()
		si := &runner.StoreImages{Store: s, Set: &spec.Set{Images: []spec.Image{d}}, Refresh: refresh}
		got, err := si.ResolveImage(t.Context(), "base")
		require.NoError(t, err)
		return got.Fingerprint
	}
	assert.Equal(t, old.Fingerprint, resolve(def, time.Hour))
	img, err := s.Resolve(old.Fingerprint)
	require.NoError(t, err)
	require.NotNil(t, img.Source)
	assert.True(t, img.Source.AutoUpdate, "pulled on use: auto-updating")
	n := asked.Load()

	newer := imagetest.Restamp(t, src, old, time.Now().Add(-time.Hour), map[string]string{"etc/version": "2\n"}, "heldout/bb")
	assert.Equal(t, old.Fingerprint, resolve(def, time.Hour), "within the interval: the stored image")
	assert.Equal(t, n, asked.Load(), "and the remote is not asked")

	time.Sleep(1100 * time.Millisecond)
	assert.Equal(t, newer.Fingerprint, resolve(def, time.Second), "the interval passed: the newer version")
	got, err := s.Resolve(newer.Fingerprint)
	require.NoError(t, err)
	assert.True(t, got.Source.AutoUpdate)
	assert.False(t, got.Source.Checked.IsZero())
	_, err = s.Resolve(old.Fingerprint)
	require.NoError(t, err, "the old image stays for containers made from it")

	time.Sleep(1100 * time.Millisecond)
	n = asked.Load()
	assert.Equal(t, newer.Fingerprint, resolve(def, time.Second), "nothing newer")
	assert.Greater(t, asked.Load(), n, "the remote was asked")
	again, err := s.Resolve(newer.Fingerprint)
	require.NoError(t, err)
	assert.True(t, again.Source.Checked.After(got.Source.Checked), "the check time is recorded")

	time.Sleep(1100 * time.Millisecond)
	off := false
	n = asked.Load()
	resolve(spec.Image{Name: "base", Pull: "ss:heldout/bb", AutoUpdate: &off}, time.Second)
	assert.Equal(t, n, asked.Load(), "auto_update = false never asks")
}

// TestResolveAutoUpdateUnreachable: a remote that does not answer within
// the check timeout leaves the cached image in use, with a warning naming
// the reference; a job is not held up by it for longer.
func TestResolveAutoUpdateUnreachable(t *testing.T) {
	_, src, old := busyboxStore(t, "heldout/bb")
	_, s, srv, _ := servedStore(t, src)
	si := &runner.StoreImages{Store: s}
	_, err := si.ResolveImage(t.Context(), "ss:heldout/bb")
	require.NoError(t, err)

	// The remote now accepts connections and never answers.
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv.CloseClientConnections()
	var mu sync.Mutex
	var warned []string
	time.Sleep(1100 * time.Millisecond)
	si = &runner.StoreImages{Store: s, Refresh: time.Second, CheckTimeout: 2 * time.Second,
		Warn: func(msg string) { mu.Lock(); warned = append(warned, msg); mu.Unlock() }}
	start := time.Now()
	got, err := si.ResolveImage(t.Context(), "ss:heldout/bb")
	require.NoError(t, err)
	assert.Equal(t, old.Fingerprint, got.Fingerprint)
	assert.Less(t, time.Since(start), 20*time.Second, "bounded by the check timeout")
	require.Len(t, warned, 1)
	assert.Contains(t, warned[0], "image ss:heldout/bb: using the cached image "+old.Fingerprint[:12])
	assert.Contains(t, warned[0], "timed out")

	// A remote that refuses connections: the same.
	srv.Close()
	time.Sleep(1100 * time.Millisecond)
	warned = nil
	si = &runner.StoreImages{Store: s, Refresh: time.Second, Warn: si.Warn}
	got, err = si.ResolveImage(t.Context(), "ss:heldout/bb")
	require.NoError(t, err)
	assert.Equal(t, old.Fingerprint, got.Fingerprint)
	require.Len(t, warned, 1)
	assert.Contains(t, warned[0], "image ss:heldout/bb: using the cached image")
}
