package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
)

// TestRepairGoldens: gc's repair destroys a golden volume with a corrupt
// record, and leaves (reporting it) a corrupt clone and a corrupt golden
// that still has a clone.
func TestRepairGoldens(t *testing.T) {
	testenv.RequiresRoot(t) // the dir driver bind-mounts its golden volumes
	ctx := context.Background()
	cfg := storage.Config{Driver: "dir", Root: t.TempDir()}
	drv, err := storage.Open(ctx, cfg)
	require.NoError(t, err)
	defer drv.Close()
	src := storage.SourceFunc(func(_ context.Context, dir string) error {
		return os.WriteFile(filepath.Join(dir, "hello"), []byte("hi\n"), 0o644)
	})
	lone, used := goldenID("aaaa", "priv"), goldenID("bbbb", "priv")
	for _, id := range []string{lone, used} {
		_, err := drv.CreateGolden(ctx, id, src, storage.GoldenOptions{})
		require.NoError(t, err)
	}
	_, err = drv.Clone(ctx, used, "job-c1")
	require.NoError(t, err)
	_, err = drv.Clone(ctx, lone, "job-c2")
	require.NoError(t, err)
	require.NoError(t, drv.Destroy(ctx, "job-c2"))
	_, err = drv.Clone(ctx, lone, "job-c3")
	require.NoError(t, err)
	for _, id := range []string{lone, used, "job-c3"} {
		m := filepath.Join(storage.PoolPath(cfg), "volumes", id, "meta.json")
		require.NoError(t, os.WriteFile(m, []byte("{"), 0o644))
	}
	// job-c3's record is gone, so nothing ties it to lone any more.
	removed, err := repairGoldens(ctx, drv)
	assert.Equal(t, []string{"golden volume " + lone + " (corrupt record: read " +
		filepath.Join(storage.PoolPath(cfg), "volumes", lone, "meta.json") + ": unexpected end of JSON input)"}, removed)
	require.Error(t, err)
	assert.True(t, errors.Is(err, storage.ErrCorrupt), "%v", err)
	assert.True(t, errors.Is(err, storage.ErrInUse), "%v: %s has a clone", err, used)
	assert.Contains(t, err.Error(), `volume "job-c3"`)
	assert.Contains(t, err.Error(), "not a golden volume, left alone")
	bad, err := storage.Corrupt(drv)
	require.NoError(t, err)
	var ids []string
	for _, ce := range bad {
		ids = append(ids, ce.ID)
	}
	assert.ElementsMatch(t, []string{used, "job-c3"}, ids)
	for _, id := range []string{"job-c1", "job-c3", used} {
		require.NoError(t, drv.Destroy(ctx, id))
	}
}
