package runner

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestJobLogByRecordedName: a job name finds the newest log that names it
// (a_b and a-b share their containers' names), an older stint's log
// without a name only when none names it, a container name its own log;
// PruneLogs removes the names with their logs and a name left alone.
func TestJobLogByRecordedName(t *testing.T) {
	root := t.TempDir()
	h, err := Open(context.Background(), root, Options{})
	require.NoError(t, err)
	defer h.Close()
	dir := h.Layout().Logs()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	base := time.Now().Add(-time.Hour)
	for i, f := range []struct{ ctr, job string }{
		{"stint-a-b-00000001", "a_b"},
		{"stint-a-b-00000002", "a-b"},
		{"stint-a-b-00000003", ""}, // an older stint's: no name
		{"stint-x-00000004", ""},
	} {
		p := filepath.Join(dir, f.ctr+".log")
		if f.job != "" {
			require.NoError(t, writeJobName(p, f.job))
		}
		require.NoError(t, os.WriteFile(p, []byte(f.ctr), 0o600))
		mt := base.Add(time.Duration(i) * time.Minute)
		require.NoError(t, os.Chtimes(p, mt, mt))
	}
	orphan := filepath.Join(dir, "stint-z-00000005.job")
	require.NoError(t, os.WriteFile(orphan, []byte("z\n"), 0o600))
	require.NoError(t, os.Chtimes(orphan, base, base))

	for name, want := range map[string]string{
		"a_b":                "stint-a-b-00000001",
		"a-b":                "stint-a-b-00000002",
		"x":                  "stint-x-00000004",
		"stint-a-b-00000003": "stint-a-b-00000003",
		"a.b":                "stint-a-b-00000003", // none names it: the unnamed one may be its
	} {
		jl, err := h.JobLog(name)
		require.NoError(t, err, name)
		assert.Equal(t, want, jl.Container, "stint logs %s", name)
	}
	_, err = h.JobLog("nosuch")
	assert.ErrorIs(t, err, ErrNoLog)

	removed, err := h.PruneLogs(time.Now())
	require.NoError(t, err)
	assert.Len(t, removed, 4)
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, left)
}
