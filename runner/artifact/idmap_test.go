package artifact

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testMap = idmap.Map{HostUID: 100000, HostGID: 100000, Size: 65536}

// idmapFixture builds a root as an unprivileged container sees it: files of
// its own (mapped ids) and files of the host's root (unmapped), as a bind
// mount or a sysfs/proc mount would show them.
func idmapFixture(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	mu, mg := int(testMap.HostUID), int(testMap.HostGID)
	type ent struct {
		mode     os.FileMode
		uid, gid int
	}
	files := map[string]ent{
		"out/mine.txt":         {0o600, mu, mg}, // the container's own: its root reads it
		"out/mine-1000.txt":    {0o600, mu + 1000, mg + 1000},
		"out/secret.env":       {0o600, 0, 0},           // host root's 0600: unreadable
		"out/public.txt":       {0o644, 0, 0},           // host root's, world-readable
		"out/halfmapped.txt":   {0o600, mu, 0},          // gid unmapped: no CAP_DAC_OVERRIDE
		"out/beyond.txt":       {0o600, mu + 65536, mg}, // just past the map
		"out/closed/inner.txt": {0o644, mu, mg},         // in a host root 0700 directory
		"out/open/inner.txt":   {0o644, mu, mg},         // in a host root 0755 directory
		"deep/closed/x/y.txt":  {0o644, mu, mg},         // under a directory it can't search
	}
	for p, e := range files {
		full := filepath.Join(root, p)
		mkfile(t, full, p, 0o644)
		require.NoError(t, os.Chmod(full, e.mode))
		require.NoError(t, os.Lchown(full, e.uid, e.gid))
	}
	for _, d := range []string{"out", "out/open", "deep", "deep/closed/x"} {
		require.NoError(t, os.Lchown(filepath.Join(root, d), mu, mg))
	}
	require.NoError(t, os.Chmod(filepath.Join(root, "out/closed"), 0o700))
	require.NoError(t, os.Chmod(filepath.Join(root, "deep/closed"), 0o700))
	require.NoError(t, os.Lchown(filepath.Join(root, "out/open"), 0, 0))
	return root
}

var idmapArts = []spec.Artifact{
	{Path: "/out"},
	{Path: "/deep/closed/x/y.txt", Dest: "direct"},
	{Path: "/deep/closed/*/y.txt", Dest: "globbed"},
}

// TestCollectIDMapUnreadableSkipped: for an unprivileged job, only what the
// container's root could read is copied; the rest is skipped with a reason.
func TestCollectIDMapUnreadableSkipped(t *testing.T) {
	testenv.RequiresRoot(t)
	root := idmapFixture(t)
	dest := filepath.Join(t.TempDir(), "job")
	m := testMap
	res, err := CollectWith(context.Background(), root, idmapArts, dest, false, Options{IDMap: &m})
	require.NoError(t, err)

	got := tree(t, dest)
	assert.Equal(t, "f 0600 out/mine.txt", got["out/mine.txt"])
	assert.Equal(t, "f 0600 out/mine-1000.txt", got["out/mine-1000.txt"])
	assert.Equal(t, "f 0644 out/public.txt", got["out/public.txt"])
	assert.Equal(t, "f 0644 out/open/inner.txt", got["out/open/inner.txt"])
	for _, p := range []string{"out/secret.env", "out/halfmapped.txt", "out/beyond.txt", "out/closed", "out/closed/inner.txt", "direct/y.txt", "globbed"} {
		assert.NotContains(t, got, p)
	}

	skips := skipReasons(res)
	for p, want := range map[string]string{
		"/out/secret.env":      "not readable by the container (owner uid 0 outside its id map",
		"/out/halfmapped.txt":  "not readable by the container (group gid 0 outside its id map",
		"/out/beyond.txt":      "owner uid 165536 outside its id map",
		"/out/closed":          "not readable by the container (owner uid 0 outside its id map",
		"/deep/closed/x/y.txt": "/deep/closed is not searchable by the container (owner uid 0 outside its id map",
		"/deep/closed":         "not readable by the container (owner uid 0 outside its id map",
		"/deep/closed/*/y.txt": "matched nothing",
	} {
		if assert.Contains(t, skips, p) {
			assert.Contains(t, skips[p], want, p)
		}
	}
	assert.NotContains(t, res.Copied, "/out/secret.env")
}

// TestCollectIDMapFromRunner: the Runner's collector (runner.CollectLocal)
// passes the map as an Option, as the runner's CollectFunc takes it.
func TestCollectIDMapFromRunner(t *testing.T) {
	testenv.RequiresRoot(t)
	root := idmapFixture(t)
	dest := filepath.Join(t.TempDir(), "job")
	m := testMap
	res, err := CollectWith(context.Background(), root, idmapArts[:1], dest, false, Options{IDMap: &m})
	require.NoError(t, err)
	assert.NotContains(t, tree(t, dest), "out/secret.env")
	assert.Contains(t, skipReasons(res), "/out/secret.env")
}

// TestCollectNoIDMapCopiesAll: a privileged job's root is the host's root,
// so everything is copied as before.
func TestCollectNoIDMapCopiesAll(t *testing.T) {
	testenv.RequiresRoot(t)
	root := idmapFixture(t)
	dest := filepath.Join(t.TempDir(), "job")
	res, err := CollectWith(context.Background(), root, idmapArts, dest, false, Options{})
	require.NoError(t, err)
	got := tree(t, dest)
	for _, p := range []string{"out/mine.txt", "out/secret.env", "out/public.txt", "out/halfmapped.txt", "out/beyond.txt", "out/closed/inner.txt", "direct/y.txt", "globbed/y.txt"} {
		assert.Contains(t, got, p)
	}
	assert.Empty(t, res.Skipped)
}
