package runner_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/runner/state"
)

// leaveCgroups makes, in every cgroup hierarchy, the empty
// lxc.monitor.<name> and lxc.payload.<name> (with a child) that LXC leaves
// behind after a failed start or a kill -9, and returns them.
func leaveCgroups(t *testing.T, name string) []string {
	t.Helper()
	hier, err := filepath.Glob("/sys/fs/cgroup/*")
	require.NoError(t, err)
	var dirs []string
	for _, h := range hier {
		if fi, err := os.Lstat(h); err != nil || !fi.IsDir() {
			continue
		}
		for _, d := range []string{"lxc.monitor." + name, "lxc.payload." + name, "lxc.payload." + name + "/init.scope"} {
			p := filepath.Join(h, d)
			require.NoError(t, os.Mkdir(p, 0o755))
			dirs = append(dirs, p)
		}
	}
	require.NotEmpty(t, dirs)
	t.Cleanup(func() {
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
	})
	return dirs
}

// TestGCRemovesLeftCgroups: empty LXC cgroups of stint's containers go,
// with the record's teardown or, for a name with no record, with gc's
// sweep; another program's container's cgroups stay.
func TestGCRemovesLeftCgroups(t *testing.T) {
	f := newRunner(t)
	id := os.Getpid()
	recorded := fmt.Sprintf("stint-cgtest-rec-%d", id)
	stray := fmt.Sprintf("stint-cgtest-stray-%d", id)
	foreign := fmt.Sprintf("other-cgtest-%d", id)
	recDirs, strayDirs, foreignDirs := leaveCgroups(t, recorded), leaveCgroups(t, stray), leaveCgroups(t, foreign)

	// A dead run's record (no live owner), its container already gone.
	h, err := f.r.State.Create(&state.Record{Name: recorded, Kind: state.KindJob})
	require.NoError(t, err)
	require.NoError(t, h.Release())

	res, err := f.r.GC(context.Background(), runner.GCOptions{})
	require.NoError(t, err)
	assert.Empty(t, res.Errors)
	assert.Contains(t, res.Removed, recorded)
	assert.Contains(t, res.Removed, "cgroups of "+stray)
	for _, d := range append(recDirs, strayDirs...) {
		assert.NoDirExists(t, d)
	}
	for _, d := range foreignDirs {
		assert.DirExists(t, d, "gc removed another program's cgroup")
	}
}
