package lxcrt_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/freezer"
	"github.com/stintdev/stint/runner/container"
)

// Issue 16: a job's artifacts are read with its container frozen, and the
// freeze must cost milliseconds, never liblxc's one-second re-read. A busy
// loop in the container is what most often leaves the first read at
// FREEZING.
func TestFreezeIsFastAndFreezesTheContainer(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	f.start(t, "frz", container.Config{})
	_, st := f.sh(t, "frz", "sh -c 'while :; do :; done' >/dev/null 2>&1 </dev/null & sleep 1000 >/dev/null 2>&1 </dev/null &")
	require.True(t, st.Success())

	root, err := f.rt.RootDir(ctx, "frz")
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.Split(root, "/")[2]) // /proc/<pid>/root
	require.NoError(t, err)
	dir, err := freezer.CgroupDir(pid)
	require.NoError(t, err)
	require.Equal(t, "lxc.payload.frz", filepath.Base(dir))
	fz, err := freezer.New(dir)
	require.NoError(t, err)

	var worst time.Duration
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		require.NoError(t, f.rt.Freeze(ctx, "frz"))
		worst = max(worst, time.Since(t0))
		frozen, err := fz.Frozen()
		require.NoError(t, err)
		require.True(t, frozen, "the container's payload cgroup is frozen")
		require.NoError(t, fz.Thaw(ctx))
	}
	t.Logf("longest of 20 freezes of a container with a busy loop: %v", worst)
	assert.Less(t, worst, 500*time.Millisecond, "nowhere near liblxc's one-second stall")

	// A frozen container still stops (liblxc thaws after its kill).
	require.NoError(t, f.rt.Freeze(ctx, "frz"))
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, f.rt.Stop(sctx, "frz"))
	_, err = os.Stat(dir)
	assert.ErrorIs(t, err, os.ErrNotExist, "the payload cgroup went with the container")
}

func TestFreezeOfAStoppedContainer(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	f.start(t, "frz2", container.Config{})
	require.NoError(t, f.rt.Stop(ctx, "frz2"))
	err := f.rt.Freeze(ctx, "frz2")
	assert.ErrorIs(t, err, container.ErrNotRunning)
	assert.Contains(t, err.Error(), "frz2")
}
