package hostdir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetgid)
}

// TestMkdirAllKeepsExisting: what existed keeps its mode, sticky bit
// included; what MkdirAll made has exactly the mode asked for.
func TestMkdirAllKeepsExisting(t *testing.T) {
	base := t.TempDir()
	for _, m := range []fs.FileMode{0o700, 0o750, fs.ModeSticky | 0o777, fs.ModeSetgid | 0o775} {
		existing := filepath.Join(base, m.String())
		require.NoError(t, os.Mkdir(existing, 0o700))
		require.NoError(t, os.Chmod(existing, m))
		require.NoError(t, MkdirAll(filepath.Join(existing, "a", "b"), 0o711))
		assert.Equal(t, m, mode(t, existing), "an existing directory changed mode")
		assert.Equal(t, fs.FileMode(0o711), mode(t, filepath.Join(existing, "a")))
		assert.Equal(t, fs.FileMode(0o711), mode(t, filepath.Join(existing, "a", "b")))
		// A second call changes nothing of its own making either.
		require.NoError(t, os.Chmod(filepath.Join(existing, "a"), 0o755))
		require.NoError(t, MkdirAll(filepath.Join(existing, "a", "b"), 0o711))
		assert.Equal(t, fs.FileMode(0o755), mode(t, filepath.Join(existing, "a")))
	}
	f := filepath.Join(base, "file")
	require.NoError(t, os.WriteFile(f, nil, 0o600))
	assert.Error(t, MkdirAll(f, 0o711), "a file where the directory should be")
}

// TestCheckReachable names the first ancestor others can't search, ignores
// components that don't exist yet, and changes nothing.
func TestCheckReachable(t *testing.T) {
	base := t.TempDir()
	testenv.Reachable(t, base)
	closed := filepath.Join(base, "home")
	inner := filepath.Join(closed, "u", "stint")
	require.NoError(t, os.MkdirAll(inner, 0o755))
	require.NoError(t, os.Chmod(closed, 0o700))

	for _, tc := range []struct {
		dir      string
		ancestor string // "" = reachable
	}{
		{base, ""},
		{filepath.Join(base, "not", "yet"), ""},
		{closed, closed},
		{inner, closed},
		{filepath.Join(inner, "missing"), closed},
	} {
		err := CheckReachable(tc.dir)
		if tc.ancestor == "" {
			assert.NoError(t, err, tc.dir)
			continue
		}
		var be *BlockedError
		require.True(t, errors.As(err, &be), "%s: %v", tc.dir, err)
		assert.Equal(t, tc.ancestor, be.Ancestor)
		assert.Equal(t, fs.FileMode(0o700), be.Mode)
		assert.Contains(t, err.Error(), "chmod o+x "+closed)
	}
	assert.Equal(t, fs.FileMode(0o700), mode(t, closed), "CheckReachable changed a mode")
}
