package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLIGCTruncatedRecord: after a kill -9, a truncated job record (only
// its name is left) still lets gc remove the container, its clone and its
// mounts, and gc says "removed" only then.
func TestCLIGCTruncatedRecord(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.torn]
image = "busybox"
mounts = [{ source = "`+f.dir+`", target = "/src", readonly = true }]
run = ["echo started", "sleep 600"]
`)
	c := f.startUntil(t, "[torn] started", "run", p)
	require.NoError(t, c.Process.Signal(syscall.SIGKILL))
	_ = c.Wait()
	ents, err := os.ReadDir(filepath.Join(f.root, "containers"))
	require.NoError(t, err)
	var name string
	for _, e := range ents {
		if e.Name()[0] != '.' {
			name = e.Name()
		}
	}
	require.NotEmpty(t, name, "the killed run should have left its container")
	rec := filepath.Join(f.root, "state", name+".json")
	b, err := os.ReadFile(rec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(rec, b[:len(b)/2], 0o600))
	out, code := f.run(t, "ps")
	assert.Equal(t, 0, code, out)
	assert.Regexp(t, name+`\s.*corrupt\s+-\n`, out, "a corrupt record's age is unknown")
	out, code = f.run(t, "gc")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "removed "+name)
	f.assertClean(t)
}

func TestPsAgeUnknown(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	assert.Equal(t, "-", age(time.Time{}, now))
	assert.Equal(t, "1m30s", age(now.Add(-90*time.Second-400*time.Millisecond), now))
}
