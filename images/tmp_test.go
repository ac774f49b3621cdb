package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/stintdev/stint/internal/mountinfo"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func storeEntries(t *testing.T, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(s.Dir())
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestSweepTemporaries (issue 18): Sweep removes the temporaries nobody
// holds (a file and a tree a dead process left), never one a live maker
// holds, and a busybox build's file only once no build lock is held.
func TestSweepTemporaries(t *testing.T) {
	s := newStore(t)
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), ".tmp-import-dead"), []byte("x"), 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(s.Dir(), ".tmp-debootstrap-dead", "rootfs", "etc"), 0o755))
	live, release, err := s.TempDir(".tmp-pull-")
	require.NoError(t, err)
	f, releaseFile, err := s.TempFile(".tmp-pack-")
	require.NoError(t, err)
	require.NoError(t, f.Close(), "held past its own close")
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), ".tmp-build-bb"), []byte("x"), 0o600))
	build := flock.New(filepath.Join(s.Dir(), ".build-0123456789abcdef.lock"))
	require.NoError(t, build.Lock())

	gone, err := s.Sweep()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{".tmp-import-dead", ".tmp-debootstrap-dead"}, gone)
	assert.ElementsMatch(t, []string{filepath.Base(live), filepath.Base(f.Name()), ".tmp-build-bb"}, storeEntries(t, s))

	require.NoError(t, build.Unlock())
	release()
	releaseFile()
	_, err = Open(s.Dir()) // opening the store sweeps
	require.NoError(t, err)
	assert.Empty(t, storeEntries(t, s))
}

// TestSweepAfterKill: a temporary held by a process that is then killed
// with SIGKILL (here a process that locked it with flock(1) and became sleep) is kept while
// the process lives and swept once it is dead.
func TestSweepAfterKill(t *testing.T) {
	testenv.RequiresTool(t, "flock")
	s := newStore(t)
	dir := filepath.Join(s.Dir(), ".tmp-oci-killed")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755))
	// The shell opens the directory, locks it and becomes sleep, which
	// holds the lock as a builder holds its temporary.
	cmd := exec.Command("sh", "-c", `exec 9<"$1" && flock -x 9 && exec sleep 600`, "sh", dir)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	require.Eventually(t, func() bool {
		release, err := hold(dir)
		if err == nil {
			release()
		}
		return err != nil
	}, 10*time.Second, 20*time.Millisecond, "flock(1) holds the directory")

	gone, err := s.Sweep()
	require.NoError(t, err)
	assert.Empty(t, gone, "held by a live process")
	require.NoError(t, cmd.Process.Signal(unix.SIGKILL))
	_ = cmd.Wait()
	gone, err = s.Sweep()
	require.NoError(t, err)
	assert.Equal(t, []string{".tmp-oci-killed"}, gone)
	assert.NoDirExists(t, dir)
}

// TestSweepDetachesMounts: a dead debootstrap tree with a mount beneath
// it (its /proc) is unmounted before it is removed, so removing never
// reaches into what is mounted.
func TestSweepDetachesMounts(t *testing.T) {
	testenv.RequiresRoot(t)
	s := newStore(t)
	proc := filepath.Join(s.Dir(), ".tmp-debootstrap-x", "rootfs", "proc")
	require.NoError(t, os.MkdirAll(proc, 0o755))
	require.NoError(t, unix.Mount("stint-test", proc, "tmpfs", 0, "size=1m"))
	t.Cleanup(func() { _ = unix.Unmount(proc, unix.MNT_DETACH) })
	require.NoError(t, os.WriteFile(filepath.Join(proc, "inside"), []byte("x"), 0o600))
	gone, err := s.Sweep()
	require.NoError(t, err)
	assert.Equal(t, []string{".tmp-debootstrap-x"}, gone)
	mounts, err := mountinfo.Beneath(filepath.Clean(s.Dir()))
	require.NoError(t, err)
	assert.Empty(t, mounts)
}
