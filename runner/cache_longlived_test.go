package runner

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/storage"
)

// TestLongLivedCommitCaches: a long-lived container standing in for a job
// (the GitLab driver's) commits its own copy of a cache only when told the
// job passed; a failed job's writes leave the cache as it was, and
// destroying the container leaves no copy.
func TestLongLivedCommitCaches(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	dir := specDir(t, "gl", `[container.job]
image = "bb"
command = ["/bin/sh", "-c", "echo run >> /c/log && echo wrote; exec sleep 100000"]
mount = [{ type = "cache", name = "ci", target = "/c" }]
`)
	k := cacheKey{name: "ci"}
	cacheLog := func() string {
		t.Helper()
		p, ok, err := h.backend.Runner.readPointer(k)
		require.NoError(t, err)
		require.True(t, ok, "the cache has no generation")
		v, err := h.drv.Get(ctx, p.Volume)
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(v.Rootfs, "log"))
		if os.IsNotExist(err) {
			return ""
		}
		require.NoError(t, err)
		return string(b)
	}

	h.apply(t, dir)
	h.consoleHas(t, "gl", "job", "wrote")
	require.NoError(t, h.backend.CommitCaches(ctx, "gl", "job", false))
	assert.Equal(t, "", cacheLog(), "a failed job's writes reached the cache")

	require.NoError(t, h.backend.Start(ctx, "gl", "job"))
	// The second start's command appends to the same copy once it runs.
	cp, err := h.drv.Get(ctx, cacheCopyID(reconcile.RuntimeName("gl", "job"), 0))
	require.NoError(t, err)
	assert.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(cp.Rootfs, "log"))
		return string(b) == "run\nrun\n"
	}, time.Minute, 50*time.Millisecond, "the restarted container's copy")
	require.NoError(t, h.backend.CommitCaches(ctx, "gl", "job", true))
	assert.Equal(t, "run\nrun\n", cacheLog(), "a passed job's copy (both starts' writes) was not committed")

	require.NoError(t, h.backend.Destroy(ctx, "gl", "job"))
	require.NoError(t, h.drv.Walk(ctx, func(v storage.Volume) error {
		assert.NotEqual(t, storage.KindClone, v.Kind, "%s left", v.ID)
		return nil
	}))
	_, err = h.backend.Runner.State.Get(reconcile.RuntimeName("gl", "job"))
	assert.Error(t, err, "the record is left")
}
