package freezer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
)

// The bar of issue 16: reading a job's artifacts with its container frozen
// must never cost a second; no job's artifacts phase over 100 ms.
const bar = 100 * time.Millisecond

func TestBackoffIsShortAndBounded(t *testing.T) {
	assert.Equal(t, time.Duration(0), Backoff(0), "the first re-read is immediate")
	var sum time.Duration
	for i := 0; i < 10; i++ {
		d := Backoff(i)
		assert.LessOrEqual(t, d, 5*time.Millisecond)
		if i > 0 {
			assert.GreaterOrEqual(t, d, Backoff(i-1), "never shorter than the one before")
		}
		sum += d
	}
	assert.Less(t, sum, 20*time.Millisecond, "ten re-reads within 20 ms, where liblxc waits a second before its second")
	assert.Equal(t, 5*time.Millisecond, Backoff(1000))
}

// fakeV2 is a cgroup v2 directory of plain files: cgroup.events says
// "frozen 1" only once the freezer has waited `after` times. The freezer's
// clock is fake: it moves by the waits only.
func fakeV2(t *testing.T, after int) (*Freezer, *[]time.Duration) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte("populated 1\nfrozen 0\n"), 0o644))
	f, err := New(dir)
	require.NoError(t, err)
	require.True(t, f.V2())
	var waits []time.Duration
	clock := time.Unix(0, 0)
	f.now = func() time.Time { return clock }
	f.sleep = func(d time.Duration) {
		waits = append(waits, d)
		clock = clock.Add(d)
		if len(waits) == after {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte("populated 1\nfrozen 1\n"), 0o644))
		}
	}
	return f, &waits
}

func TestFreezeRereadsWithBackoffNotASecond(t *testing.T) {
	f, waits := fakeV2(t, 4)
	require.NoError(t, f.Freeze(context.Background()))
	assert.Equal(t, []time.Duration{0, 50 * time.Microsecond, 100 * time.Microsecond, 200 * time.Microsecond}, *waits)
	b, err := os.ReadFile(filepath.Join(f.Dir(), "cgroup.freeze"))
	require.NoError(t, err)
	assert.Equal(t, "1", string(b))
}

func TestFreezeGivesUpAfterTimeout(t *testing.T) {
	f, waits := fakeV2(t, -1) // never frozen
	f.Timeout = 30 * time.Millisecond
	err := f.Freeze(context.Background())
	require.ErrorIs(t, err, ErrTimeout)
	var fe *Error
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "frozen 0", fe.Last)
	assert.Contains(t, err.Error(), f.Dir())
	var waited time.Duration
	for _, d := range *waits {
		waited += d
	}
	assert.LessOrEqual(t, waited, 30*time.Millisecond, "never waits past the timeout")
	assert.Greater(t, waited, 20*time.Millisecond, "but up to it")

	// A sooner deadline of the context wins (on the real clock).
	f, _ = fakeV2(t, -1)
	f.now, f.sleep, f.Timeout = time.Now, time.Sleep, time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	assert.Error(t, f.Freeze(ctx))
}

func TestNewRefusesADirectoryWithoutFreezer(t *testing.T) {
	_, err := New(t.TempDir())
	var fe *Error
	assert.ErrorAs(t, err, &fe)
}

func TestParseMountinfoAndCgroup(t *testing.T) {
	hybrid := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/cpuset,freezer rw,relatime - cgroup cgroup rw,cpuset,freezer
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`
	v1m, v1r, v2m, v2r := parseMountinfo(bufio.NewScanner(strings.NewReader(hybrid)))
	assert.Equal(t, []string{"/sys/fs/cgroup/cpuset,freezer", "/", "/sys/fs/cgroup/unified", "/"}, []string{v1m, v1r, v2m, v2r})

	pure := `30 23 0:26 /ns\040root /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate`
	v1m, _, v2m, v2r = parseMountinfo(bufio.NewScanner(strings.NewReader(pure)))
	assert.Equal(t, "", v1m)
	assert.Equal(t, "/sys/fs/cgroup", v2m)
	assert.Equal(t, "/ns root", v2r, "octal escapes undone")

	v1p, v2p, has := parseCgroup(bufio.NewScanner(strings.NewReader("6:cpuset,freezer:/lxc.payload.x\n5:devices:/lxc.payload.x\n0::/lxc.payload.x/sub\n")))
	assert.Equal(t, "/lxc.payload.x", v1p)
	assert.Equal(t, "/lxc.payload.x/sub", v2p)
	assert.True(t, has)

	dir, err := join("/sys/fs/cgroup", "/ns root", "/ns root/lxc.payload.x")
	require.NoError(t, err)
	assert.Equal(t, "/sys/fs/cgroup/lxc.payload.x", dir)
	_, err = join("/sys/fs/cgroup", "/ns", "/other")
	assert.Error(t, err)
}

// throwaway makes a cgroup of its own under the hierarchy mounted at mount
// (for v2, one the test may move processes into), puts n sleeping processes
// and one busy one in it, and removes it all when the test ends.
func throwaway(t *testing.T, mount string, n int) (dir string, pids []int) {
	t.Helper()
	testenv.RequiresRoot(t)
	if _, err := os.Stat(mount); err != nil {
		testenv.Unavailable(t, mount+" is not mounted")
	}
	dir = filepath.Join(mount, fmt.Sprintf("stint-freezer-test-%d-%x", os.Getpid(), rand.Uint32()))
	require.NoError(t, os.Mkdir(dir, 0o755))
	var cmds []*exec.Cmd
	t.Cleanup(func() {
		if f, err := New(dir); err == nil {
			_ = f.Thaw(context.Background())
		}
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		// rmdir of a cgroup fails while the last task is still leaving.
		for i := 0; i < 100; i++ {
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("cgroup %s left behind", dir)
	})
	for i := 0; i <= n; i++ {
		c := exec.Command("sleep", "100")
		if i == n {
			c = exec.Command("sh", "-c", "while :; do :; done")
		}
		require.NoError(t, c.Start())
		cmds = append(cmds, c)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(c.Process.Pid)), 0))
		pids = append(pids, c.Process.Pid)
	}
	return dir, pids
}

// freezeCycles freezes and thaws dir's cgroup n times and returns the
// freezes' durations, sorted; each freeze must leave the cgroup frozen.
func freezeCycles(t *testing.T, dir string, n int) []time.Duration {
	t.Helper()
	f, err := New(dir)
	require.NoError(t, err)
	var took []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		require.NoError(t, f.Freeze(context.Background()))
		took = append(took, time.Since(t0))
		frozen, err := f.Frozen()
		require.NoError(t, err)
		require.True(t, frozen)
		require.NoError(t, f.Thaw(context.Background()))
		frozen, err = f.Frozen()
		require.NoError(t, err)
		require.False(t, frozen)
	}
	slices.Sort(took)
	return took
}

// assertFast checks freezes against the bar: the median well under it, and
// none near liblxc's one-second stall even on a loaded host, where a busy
// task may wait tens of milliseconds for a CPU to reach the refrigerator.
func assertFast(t *testing.T, kind string, took []time.Duration) {
	t.Helper()
	med, worst := took[len(took)/2], took[len(took)-1]
	t.Logf("%s: %d freezes of 5 sleeping and 1 busy process: median %v, max %v", kind, len(took), med, worst)
	assert.Less(t, med, bar/5)
	assert.Less(t, worst, 5*bar)
}

func TestFreezeV1RealCgroup(t *testing.T) {
	dir, pids := throwaway(t, "/sys/fs/cgroup/freezer", 5)
	got, err := CgroupDir(pids[0])
	require.NoError(t, err)
	assert.Equal(t, dir, got)
	f, err := New(dir)
	require.NoError(t, err)
	require.False(t, f.V2())
	assertFast(t, "v1", freezeCycles(t, dir, 50))
}

func TestFreezeV2RealCgroup(t *testing.T) {
	mount := "/sys/fs/cgroup/unified" // a hybrid host's cgroup2
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		mount = "/sys/fs/cgroup" // a pure v2 host
	}
	dir, _ := throwaway(t, mount, 5)
	f, err := New(dir)
	require.NoError(t, err)
	require.True(t, f.V2())
	assertFast(t, "v2", freezeCycles(t, dir, 50))
}
