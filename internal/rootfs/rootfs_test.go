package rootfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fixture is a root with a file, links inside and out of it, and a host
// directory beside it.
func fixture(t *testing.T) (root, host string, fd int) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "root")
	host = t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("inside"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(host, "passwd"), []byte("host"), 0o644))
	require.NoError(t, os.Symlink("/etc", filepath.Join(root, "abs")))
	require.NoError(t, os.Symlink("../../../../../../../../etc", filepath.Join(root, "up")))
	require.NoError(t, os.Symlink(host, filepath.Join(root, "hostdir")))
	require.NoError(t, os.Symlink("/proc/self/root/etc", filepath.Join(root, "magic")))
	fd, err := OpenRoot(root)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return root, host, fd
}

func readFd(t *testing.T, fd int) string {
	t.Helper()
	f := os.NewFile(uintptr(fd), "x")
	defer f.Close()
	b := make([]byte, 64)
	n, _ := f.Read(b)
	return string(b[:n])
}

func TestOpenIn(t *testing.T) {
	_, host, root := fixture(t)
	for _, p := range []string{"/etc/passwd", "etc/passwd", "/abs/passwd", "/up/passwd", "/../../etc/passwd"} {
		fd, err := OpenIn(root, p, unix.O_RDONLY, 0)
		require.NoError(t, err, p)
		assert.Equal(t, "inside", readFd(t, fd), p)
	}
	// The host's directory, by its real path, is not inside the root.
	_, err := OpenIn(root, "/hostdir/passwd", unix.O_RDONLY, 0)
	assert.ErrorIs(t, err, unix.ENOENT)
	_, err = OpenIn(root, filepath.Join(host, "passwd"), unix.O_RDONLY, 0)
	assert.ErrorIs(t, err, unix.ENOENT)
	// Magic links are refused.
	_, err = OpenIn(root, "/magic/passwd", unix.O_RDONLY, 0)
	assert.Error(t, err)
}

func TestMkdirAllIn(t *testing.T) {
	root, host, rfd := fixture(t)
	var made int
	count := func(int) error { made++; return nil }

	fd, err := MkdirAllIn(rfd, "/abs/a/b", 0o755, count)
	require.NoError(t, err)
	unix.Close(fd)
	assert.Equal(t, 2, made)
	assert.DirExists(t, filepath.Join(root, "etc/a/b"))

	// Existing: nothing made.
	fd, err = MkdirAllIn(rfd, "/etc/a", 0o755, count)
	require.NoError(t, err)
	unix.Close(fd)
	assert.Equal(t, 2, made)

	// A link out of the root (dangling inside it) and a file are not
	// directories: refused, and nothing is made on the host.
	for _, p := range []string{"/hostdir/x", "/etc/passwd/x"} {
		_, err = MkdirAllIn(rfd, p, 0o755, count)
		assert.ErrorIs(t, err, ErrNotDir, p)
	}
	ents, err := os.ReadDir(host)
	require.NoError(t, err)
	assert.Len(t, ents, 1)
	assert.Equal(t, 2, made)
}
