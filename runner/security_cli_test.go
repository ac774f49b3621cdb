package runner_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Security regressions found by review, driven through the stint binary.

// TestCLIInheritedFdNotInJob: a descriptor the caller left open (here fd 9,
// a directory of the host) must not reach the job's processes, where it
// would be a way out of the container's root.
func TestCLIInheritedFdNotInJob(t *testing.T) {
	f := newCLI(t)
	hostDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(hostDir, "secret"), []byte("host-only\n"), 0o644))
	p := f.spec(t, `
[job.fd]
image = "busybox"
run = ["ls /proc/self/fd/; if test -e /proc/self/fd/9; then echo FD9-VISIBLE; cat /proc/self/fd/9/secret; fi"]
`)
	dir, err := os.Open(hostDir)
	require.NoError(t, err)
	defer dir.Close()
	c := f.cmd("run", p)
	// ExtraFiles[i] becomes fd 3+i: pad up to 9 with the same descriptor.
	c.ExtraFiles = []*os.File{dir, dir, dir, dir, dir, dir, dir}
	out, err := c.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.NotContains(t, string(out), "FD9-VISIBLE")
	assert.NotContains(t, string(out), "host-only")

	// stint exec likewise.
	c = f.cmd("exec", "busybox", "--", "sh", "-c", "test -e /proc/self/fd/9 && echo FD9-VISIBLE; ls /proc/self/fd/")
	c.ExtraFiles = []*os.File{dir, dir, dir, dir, dir, dir, dir}
	out, err = c.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.NotContains(t, string(out), "FD9-VISIBLE")
	f.assertClean(t)
}
