package output_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/output"
)

// TestOpenLogPrivate: a job's log may hold its secrets: root's only, even in
// a logs directory an older stint made world-readable.
func TestOpenLogPrivate(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(root, "logs"), 0o755))
	f, err := output.OpenLog(root, "stint-x-1")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	fi, err := os.Stat(output.LogPath(root, "stint-x-1"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	fi, err = os.Stat(filepath.Join(root, "logs"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}
