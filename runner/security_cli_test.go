package runner_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestCLISecretsNotInArgvLogsPrivate: a job's environment never shows in any
// process's command line (every local user reads those), and its log is
// readable by root only.
func TestCLISecretsNotInArgvLogsPrivate(t *testing.T) {
	f := newCLI(t)
	const secret = "s3cr3t-token-value-93kd"
	p := f.spec(t, `
[job.secret]
image = "busybox"
env = { API_TOKEN = "`+secret+`" }
run = ["echo sleep''ing; sleep 3"]
`)
	c := f.startUntil(t, "sleeping", "run", p)
	var leaks []string
	for i := 0; i < 5; i++ {
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, pc := range procs {
			b, err := os.ReadFile(pc)
			if err == nil && bytes.Contains(b, []byte(secret)) {
				leaks = append(leaks, pc+": "+strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	assert.Empty(t, leaks, "the job's env is in a command line")
	require.NoError(t, c.Wait())

	fi, err := os.Stat(filepath.Join(f.root, "logs"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "logs dir mode")
	logs, err := filepath.Glob(filepath.Join(f.root, "logs", "*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, logs)
	for _, l := range logs {
		fi, err := os.Stat(l)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "log %s mode", l)
	}
	f.assertClean(t)
}
