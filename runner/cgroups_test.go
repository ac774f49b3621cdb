package runner_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/runner/container"
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

// busyCgroup puts a process of its own into cgroup dir (so that it can't
// be removed) and returns the function that ends it, leaving dir empty.
func busyCgroup(t *testing.T, dir string) (release func()) {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	require.NoError(t, cmd.Start())
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // reaped: it has left the cgroup
	}
	t.Cleanup(release)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644))
	return release
}

// TestGCRemovesLeftCgroups: empty LXC cgroups of this root's containers
// go, with the record's teardown or, for a name whose teardown had to leave
// them (busy then), with gc's sweep; another program's container's
// cgroups stay.
func TestGCRemovesLeftCgroups(t *testing.T) {
	f := newRunner(t)
	cc := f.r.Runtime.(container.CgroupCleaner)
	id := os.Getpid()
	recorded := fmt.Sprintf("stint-cgtest-rec-%d", id)
	stray := fmt.Sprintf("stint-cgtest-stray-%d", id)
	foreign := fmt.Sprintf("other-cgtest-%d", id)
	recDirs, strayDirs, foreignDirs := leaveCgroups(t, recorded), leaveCgroups(t, stray), leaveCgroups(t, foreign)

	// A dead run's record (no live owner), its container already gone.
	h, err := f.r.State.Create(&state.Record{Name: recorded, Kind: state.KindJob})
	require.NoError(t, err)
	require.NoError(t, h.Release())

	// A teardown that found the stray's cgroups busy (its record gone since).
	release := busyCgroup(t, strayDirs[1]) // a payload cgroup
	err = cc.RemoveCgroups(stray)
	require.ErrorIs(t, err, unix.EBUSY)
	names, err := cc.CgroupNames()
	require.NoError(t, err)
	assert.Equal(t, []string{stray}, names)
	release()

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
	names, err = cc.CgroupNames()
	require.NoError(t, err)
	assert.Empty(t, names, "removed cgroups are forgotten")
}

// TestGCLeavesAnotherRootsCgroups (issue 18): two stint roots on one host.
// The other root's live container has empty cgroups (as while it starts,
// or a child cgroup of its own), and a name whose teardown left busy
// cgroups; this root's gc removes none of them, the other root's own gc
// removes its stray only.
func TestGCLeavesAnotherRootsCgroups(t *testing.T) {
	mine, other := newRunner(t), newRunner(t)
	id := os.Getpid()
	live := fmt.Sprintf("stint-cgtest-live-%d", id)
	stray := fmt.Sprintf("stint-cgtest-ostray-%d", id)
	liveDirs, strayDirs := leaveCgroups(t, live), leaveCgroups(t, stray)

	h, err := other.r.State.Create(&state.Record{Name: live, Kind: state.KindJob})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Delete() })
	release := busyCgroup(t, strayDirs[1])
	require.ErrorIs(t, other.r.Runtime.(container.CgroupCleaner).RemoveCgroups(stray), unix.EBUSY)
	release()
	var strayLeft []string // the busy one and its parents' chain
	for _, d := range strayDirs {
		if _, err := os.Stat(d); err == nil {
			strayLeft = append(strayLeft, d)
		}
	}
	require.NotEmpty(t, strayLeft)

	res, err := mine.r.GC(context.Background(), runner.GCOptions{Kept: true})
	require.NoError(t, err)
	assert.Empty(t, res.Removed)
	for _, d := range append(liveDirs, strayLeft...) {
		assert.DirExists(t, d, "this root's gc removed another root's cgroup")
	}

	res, err = other.r.GC(context.Background(), runner.GCOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"cgroups of " + stray}, res.Removed)
	for _, d := range strayDirs {
		assert.NoDirExists(t, d)
	}
	for _, d := range liveDirs {
		assert.DirExists(t, d, "gc removed its own live container's cgroup")
	}
}
