package lxcrt

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
)

// The warming write is a move of this process into the cgroup it is in
// already: it finds that cgroup's cgroup.procs, and after the write every
// hierarchy still lists the process where it was.
func TestWarmingWriteMovesNothing(t *testing.T) {
	testenv.RequiresRoot(t)
	before, err := os.ReadFile("/proc/self/cgroup")
	require.NoError(t, err)
	f := openOwnProcs()
	require.NotNil(t, f, "no cgroup.procs of this process's own cgroup found")
	defer f.Close()
	_, err = f.Write([]byte(strconv.Itoa(os.Getpid())))
	require.NoError(t, err)
	after, err := os.ReadFile("/proc/self/cgroup")
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after))
}

// Holds keep the warming goroutine going; once every hold is released
// (twice for one of them: release is idempotent) it ends by itself.
func TestWarmerEndsWhenReleased(t *testing.T) {
	testenv.RequiresRoot(t)
	w := &cgroupWarmer{}
	r1, r2 := w.hold(), w.hold()
	running := func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.running }
	assert.True(t, running())
	r1()
	r1()
	time.Sleep(3 * warmEvery)
	assert.True(t, running(), "one hold is left")
	r2()
	assert.Eventually(t, func() bool { return !running() }, time.Second, warmEvery)
	w.mu.Lock()
	assert.Zero(t, w.holds)
	w.mu.Unlock()
}
