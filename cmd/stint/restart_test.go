package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/storage"
)

// TestRestartPendingAndDownBySet, through the binary: an env change of a
// running container is a pending restart in plan (not "No changes"), apply
// restarts it with the new env, `stint restart NAME` restarts by name, and
// `down --set NAME` removes the set while its specs are invalid.
func TestRestartPendingAndDownBySet(t *testing.T) {
	bin, dir := builtStint(t)
	root := filepath.Join(dir, "root")
	specs := filepath.Join(dir, "specs")
	require.NoError(t, os.Mkdir(specs, 0o755))
	writeSpec := func(body string) {
		require.NoError(t, os.WriteFile(filepath.Join(specs, "app.toml"), []byte(body), 0o644))
	}
	app := func(greeting string) string {
		return `version = 1
name = "rsttest"

[image.bb]
builder = "busybox"

[container.app]
image = "bb"
env = { GREETING = "` + greeting + `" }
command = ["/bin/sh", "-c", "echo \"started $GREETING\"; exec sleep 100000"]
`
	}
	stint := stintCLI(t, bin, root)
	t.Cleanup(func() {
		if out, code := stint("down", "--set", "rsttest"); code != 0 {
			t.Errorf("cleanup: stint down: exit %d: %s", code, out)
		}
		removeVolumes(t, root)
	})
	logHas := func(s string) string { return logsShow(t, stint, "app", s, 1) }

	writeSpec(app("one"))
	out, code := stint("apply", specs)
	require.Equal(t, 0, code, out)
	logHas("started one")

	writeSpec(app("two"))
	out, code = stint("plan", specs)
	assert.Equal(t, ExitChanges, code, out)
	assert.Contains(t, out, "~>  app (restart)")
	assert.Contains(t, out, "env changed: ~GREETING (needs a restart)")
	assert.NotContains(t, out, "two", "env values never appear")
	out, code = stint("--json", "plan", specs)
	assert.Equal(t, ExitChanges, code, out)
	var rep struct {
		Summary struct{ Restart int } `json:"summary"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Equal(t, 1, rep.Summary.Restart)

	out, code = stint("apply", specs)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "ok  app restarted")
	logHas("started two")
	out, code = stint("plan", specs)
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "No changes")

	// By name, without specs: the same container, started again.
	out, code = stint("restart", "app")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "rsttest.app restarted")
	logsShow(t, stint, "app", "started two", 2) // restarted once more
	out, code = stint("restart", "nosuch")
	assert.Equal(t, ExitUsage, code, out)
	assert.Contains(t, out, `no long-lived container "nosuch"`)

	// The specs go bad: down FILE refuses (exit 2), down --set does it.
	writeSpec("version = 1\nname = \"rsttest\"\n[container.app]\nimage = \"bb\"\nstat = \"running\"\n")
	out, code = stint("down", specs)
	assert.Equal(t, ExitUsage, code, out)
	assert.Contains(t, out, "app.toml:5")
	out, code = stint("down", "--set", "rsttest", specs)
	assert.Equal(t, ExitUsage, code, "--set and files: %s", out)
	out, code = stint("down", "--set", "rsttest")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "app deleted")
	out, code = stint("--json", "ps")
	require.Equal(t, 0, code, out)
	assert.JSONEq(t, "[]", out)
	ents, err := os.ReadDir(filepath.Join(root, "containers"))
	require.NoError(t, err)
	assert.Empty(t, ents)
	left, err := filepath.Glob(filepath.Join(root, "reconcile", "*.json"))
	require.NoError(t, err)
	assert.Empty(t, left, "no stored or started spec left")
}

// removeVolumes removes every volume of root's pool: the golden volumes
// are the image cache, which down keeps.
func removeVolumes(t *testing.T, root string) {
	t.Helper()
	ctx := context.Background()
	drv, err := storage.Open(ctx, storage.Config{Driver: "auto", Root: root})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer drv.Close()
	var ids []string
	_ = drv.Walk(ctx, func(v storage.Volume) error { ids = append(ids, v.ID); return nil })
	for i := len(ids) - 1; i >= 0; i-- {
		if err := drv.Destroy(ctx, ids[i]); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// logsShow waits up to 10s for `stint logs name` to show s n times, and
// returns what it shows.
func logsShow(t *testing.T, stint func(...string) (string, int), name, s string, n int) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var code int
		out, code = stint("logs", name)
		require.Equal(t, 0, code, out)
		if strings.Count(out, s) >= n {
			return out
		}
	}
	t.Fatalf("stint logs %s does not show %q %d times; it has:\n%s", name, s, n, out)
	return ""
}
