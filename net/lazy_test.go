package stintnet

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOpenTouchesNothing: opening a Manager makes and reads nothing, so an
// unusable state directory (a file where it should be) fails only what
// needs the state, never a container without a network (modes none, host).
func TestOpenTouchesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	_, err := OpenDir(dir)
	require.NoError(t, err)
	_, err = os.Stat(dir)
	assert.ErrorIs(t, err, os.ErrNotExist, "OpenDir made the state directory")

	file := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	t.Setenv(StateDirEnv, file)
	m, err := Open(t.TempDir())
	require.NoError(t, err, "open with the state dir a file")
	ctx := context.Background()
	for _, mode := range []string{ModeNone, ModeHost} {
		l, err := m.Attach(ctx, Request{Container: "c-" + mode, Mode: mode})
		require.NoError(t, err, mode)
		assert.Equal(t, mode, l.Mode)
	}
	_, err = m.Attach(ctx, Request{Container: "c-bridge", Mode: ModeBridge})
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ENOTDIR)
	assert.Contains(t, err.Error(), file, "the error names the state directory")
	// Nothing can have been attached through it: a release (teardown's)
	// has nothing to do and succeeds.
	require.NoError(t, m.Release(ctx, "c-bridge"))
	st, err := m.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, st.Leases)
}
