package runner

import (
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/testenv"
)

// cached reports how many of path's pages are in the page cache (mincore
// of a mapping of it).
func cached(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err)
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore %s: %v", path, errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// evict drops path's pages from the page cache (it was just written: synced
// first, clean pages go).
func evict(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Sync())
	require.NoError(t, unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED))
}

// TestReadAhead: a regular file of the root, reached by its path or through
// links inside the root, is read into the page cache; a link pointing out
// of the root reads nothing outside it (it resolves inside), and a FIFO or
// a missing path is passed over without blocking.
func TestReadAhead(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	outside := filepath.Join(dir, "outside")
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = byte(i)
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "bin/busybox"), big, 0o755))
	require.NoError(t, os.WriteFile(outside, big, 0o644))
	require.NoError(t, os.Symlink("/bin/busybox", filepath.Join(root, "bin/sh")))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "bin/escape")))
	require.NoError(t, os.Symlink("../../../../../../.."+outside, filepath.Join(root, "bin/climb")))
	require.NoError(t, unix.Mkfifo(filepath.Join(root, "bin/fifo"), 0o644))

	for _, tc := range []struct {
		name  string
		paths []string
		want  string // the file that must be cached after, "" for none
	}{
		{"the file itself", []string{"/bin/busybox"}, "root"},
		{"through an absolute link, resolved in the root", []string{"/bin/sh"}, "root"},
		{"a link to a host path: resolved in the root, where it is missing", []string{"/bin/escape"}, ""},
		{"a link climbing out: stopped at the root", []string{"/bin/climb"}, ""},
		{"a FIFO, then a missing file: nothing, and no block", []string{"/bin/fifo", "/nonexistent"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(root, "bin/busybox")
			evict(t, in)
			evict(t, outside)
			// A page still cached (tmpfs keeps them all) would make the
			// test meaningless.
			if cached(t, in) > 0 || cached(t, outside) > 0 {
				testenv.Unavailable(t, "the page cache of files under "+dir+" can't be dropped (tmpfs?): set TMPDIR to a disk filesystem")
			}
			done := make(chan struct{})
			go func() { readAhead(root, tc.paths); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("readAhead blocked")
			}
			if tc.want == "root" {
				// WILLNEED starts the reads; they end soon after.
				assert.Eventually(t, func() bool { return cached(t, in) > 0 }, 5*time.Second, 5*time.Millisecond)
			} else {
				time.Sleep(50 * time.Millisecond)
				assert.Zero(t, cached(t, in))
			}
			assert.Zero(t, cached(t, outside), "nothing outside the root is read")
		})
	}
}

func TestProgramFiles(t *testing.T) {
	assert.Equal(t, []string{"/bin/sh"}, programFiles("/bin/sh"))
	assert.Equal(t, []string{"./run.sh"}, programFiles("./run.sh"))
	assert.Equal(t, []string{"/usr/bin/bash", "/bin/bash"}, programFiles(lineArgv("bash -eo pipefail", "")[0]))
	assert.Equal(t, []string{"/bin/sh"}, programFiles(lineArgv("  ", "")[0]), "no shell: lines run by /bin/sh")
	assert.Nil(t, programFiles(""))
}
