package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCLITeardownDoneOwnError: teardown_done carries only teardown's own
// error, not the job's: a timed-out job torn down cleanly has none there.
func TestCLITeardownDoneOwnError(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.slow]
image = "busybox"
timeout = "1s"
run = ["sleep 30"]
`)
	c := f.cmd("--json", "run", p)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, _ := c.Output()
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var ev struct {
			Type  string `json:"type"`
			Error string `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &ev), "%q", line)
		got[ev.Type] = ev.Error
	}
	require.Contains(t, got, "teardown_done", "%s\n%s", out, stderr.String())
	assert.NotEmpty(t, got["job_finished"], "the job's own error")
	assert.Empty(t, got["teardown_done"], "teardown succeeded")
	f.assertClean(t)
}
