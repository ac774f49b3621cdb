package runner

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/idmap"
)

// putBuild is a recipeBuild over rootfs whose container root is the test's
// own user, so that put runs without root.
func putBuild(rootfs string) *recipeBuild {
	return &recipeBuild{r: &Runner{IDMap: idmap.Map{HostUID: uint32(os.Getuid()), HostGID: uint32(os.Getgid()), Size: 1}}, rootfs: rootfs}
}

// listTree lists every path under dir, relative to it.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	}))
	return out
}

// put follows symlinks in the clone the way the container would (inside
// its root), and never writes on the host through one.
func TestPutSymlinkedParents(t *testing.T) {
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	host := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(host, "d"), 0o755))
	links := map[string]string{
		"abs":     host,                                  // the host's real directory
		"up":      "../../../../../../../../" + host[1:], // climbing to it
		"etclink": "/etc",                                // a directory inside the root
		"etcrel":  "../../etc",                           // the same, climbing (clamped)
	}
	for name, target := range links {
		require.NoError(t, os.Symlink(target, filepath.Join(rootfs, name)))
	}
	b := putBuild(rootfs)

	// Inside the root: written where the container would see it.
	require.NoError(t, b.put("/etclink/motd", []byte("hi\n"), 0o640))
	require.NoError(t, b.put("/etcrel/new/issue", []byte("x\n"), 0o644))
	got, err := os.ReadFile(filepath.Join(rootfs, "etc/motd"))
	require.NoError(t, err)
	assert.Equal(t, "hi\n", string(got))
	fi, err := os.Stat(filepath.Join(rootfs, "etc/motd"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	_, err = os.Stat(filepath.Join(rootfs, "etc/new/issue"))
	assert.NoError(t, err)

	// Out of it: written inside the root, or refused; never on the host.
	for _, target := range []string{"/abs/f", "/abs/d/f", "/abs/d/e/f", "/up/f", "/up/d/f", "/up/d/e/f"} {
		err := b.put(target, []byte("pwned\n"), 0o644)
		t.Logf("put %s: %v", target, err)
	}
	assert.Equal(t, []string{"d"}, listTree(t, host), "nothing written on the host")
	// A final symlink is not written through either.
	require.NoError(t, os.Symlink(filepath.Join(host, "f"), filepath.Join(rootfs, "etc/hostname")))
	assert.Error(t, b.put("/etc/hostname", []byte("pwned\n"), 0o644))
	assert.Equal(t, []string{"d"}, listTree(t, host), "nothing written on the host")
}

// A container process swapping a directory for a symlink to the host while
// put writes into it (a recipe's files go into a running container) never
// makes put write on the host.
func TestPutRaceStaysInRoot(t *testing.T) {
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	host := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "a/b"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(host, "b"), 0o755))
	require.NoError(t, os.Symlink(host, filepath.Join(rootfs, "x")))
	a, x := filepath.Join(rootfs, "a"), filepath.Join(rootfs, "x")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, x, unix.RENAME_EXCHANGE)
		}
	}()
	b := putBuild(rootfs)
	deadline := time.Now().Add(time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		_ = b.put("/a/b/f", []byte("pwned\n"), 0o644)
		_ = b.put("/a/c/f", []byte("pwned\n"), 0o644)
		if _, err := os.Lstat(filepath.Join(host, "b/f")); !errors.Is(err, os.ErrNotExist) {
			break
		}
		if _, err := os.Lstat(filepath.Join(host, "c")); !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	close(stop)
	wg.Wait()
	assert.Equal(t, []string{"b"}, listTree(t, host), "nothing written on the host")
}
