package artifact

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/spec"
)

// TestCollectFS: globs, directories, symlinks copied as links (one
// pointing out of the root: nothing read through it), `when`, a missing
// match, a bad dest and the size cap, over an fs.FS.
func TestCollectFS(t *testing.T) {
	fsys := fstest.MapFS{
		"work/out/a.txt":     {Data: []byte("alpha"), Mode: 0o644},
		"work/out/b.txt":     {Data: []byte("beta"), Mode: 0o755},
		"work/out/sub/c.txt": {Data: []byte("gamma"), Mode: 0o600},
		"work/out/escape":    {Data: []byte("/etc/shadow"), Mode: fs.ModeSymlink | 0o777},
		"work/big":           {Data: make([]byte, 64), Mode: 0o644},
		"work/log.txt":       {Data: []byte("log"), Mode: 0o644},
	}
	dest := filepath.Join(t.TempDir(), "job")
	arts := []spec.Artifact{
		{Path: "/work/out/*", Dest: "out"},
		{Path: "/work/log.txt", When: spec.WhenOnFailure},
		{Path: "/nothing/*"},
	}
	res, err := CollectFS(context.Background(), fsys, arts, dest, false, Options{})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"/work/out/a.txt", "/work/out/b.txt", "/work/out/escape", "/work/out/sub/c.txt"}, res.Copied)
	assert.Equal(t, []Link{{Path: "/work/out/escape", Target: "/etc/shadow"}}, res.Links)
	assert.Equal(t, int64(14), res.Bytes)
	assert.Equal(t, []Skip{{Path: "/nothing/*", Reason: "matched nothing"}}, res.Skipped)
	b, err := os.ReadFile(filepath.Join(dest, "out/sub/c.txt"))
	require.NoError(t, err)
	assert.Equal(t, "gamma", string(b))
	fi, err := os.Stat(filepath.Join(dest, "out/b.txt"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o755), fi.Mode().Perm())
	target, err := os.Readlink(filepath.Join(dest, "out/escape"))
	require.NoError(t, err)
	assert.Equal(t, "/etc/shadow", target)
	assert.NoFileExists(t, filepath.Join(dest, "log.txt"), "on_failure after a pass")

	res, err = CollectFS(context.Background(), fsys, []spec.Artifact{{Path: "/work/log.txt"}, {Path: "/work/big"}}, dest, false, Options{MaxBytes: 10})
	require.NoError(t, err)
	assert.Equal(t, []string{"/work/log.txt"}, res.Copied)
	require.Len(t, res.Skipped, 1)
	assert.Contains(t, res.Skipped[0].Reason, "size cap")
	assert.NoFileExists(t, filepath.Join(dest, "big"))

	_, err = CollectFS(context.Background(), fsys, []spec.Artifact{{Path: "/work/log.txt", Dest: "../x"}}, dest, false, Options{})
	assert.ErrorIs(t, err, ErrBadDest)
}
