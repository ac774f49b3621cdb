package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
)

// TestReconcileCLI drives plan, apply, logs and down through a built stint
// binary on a throwaway root: exit codes, output and what is left behind.
// (A built binary, because the LXC runtime re-execs its own executable.)
func TestReconcileCLI(t *testing.T) {
	bin, dir := builtStint(t)
	root := filepath.Join(dir, "root")
	specs := filepath.Join(dir, "specs")
	require.NoError(t, os.Mkdir(specs, 0o755))
	writeSpec := func(command string) {
		require.NoError(t, os.WriteFile(filepath.Join(specs, "app.toml"), []byte(`version = 1
name = "clitest"

[image.bb]
builder = "busybox"

[container.app]
image = "bb"
command = ["/bin/sh", "-c", "`+command+`; exec sleep 100000"]
`), 0o644))
	}
	stint := stintCLI(t, bin, root)
	t.Cleanup(func() {
		writeSpec("true") // down needs a valid spec naming the set
		if out, code := stint("down", specs); code != 0 {
			t.Errorf("cleanup: stint down: exit %d: %s", code, out)
		}
		// The golden volume is the image cache, which down keeps: remove it
		// (a read-only mount on overlay) so that nothing is left.
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
	})

	writeSpec("echo one")
	out, code := stint("plan", specs)
	assert.Equal(t, ExitChanges, code, out)
	assert.Contains(t, out, "+   app (create)")

	out, code = stint("apply", specs)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "app created (running)")

	out, code = stint("plan", specs)
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "No changes")

	out, code = stint("--json", "plan", specs)
	assert.Equal(t, 0, code, out)
	var rep struct {
		Changes bool `json:"changes"`
		Actions []struct {
			Action string `json:"action"`
			Name   string `json:"name"`
		} `json:"actions"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.False(t, rep.Changes)
	require.Len(t, rep.Actions, 1)
	assert.Equal(t, "none", rep.Actions[0].Action)

	writeSpec("echo two")
	out, code = stint("plan", specs)
	assert.Equal(t, ExitChanges, code, out)
	assert.Contains(t, out, "-/+ app (recreate)")
	assert.Contains(t, out, "command changed:")
	_, code = stint("apply", specs)
	require.Equal(t, 0, code)

	for i := 0; ; i++ { // the console log is written by LXC's monitor
		out, code = stint("logs", "app")
		require.Equal(t, 0, code, out)
		if strings.Contains(out, "two") || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	assert.Equal(t, "two\n", strings.ReplaceAll(out, "\r", ""))

	_, code = stint("logs", "nosuch")
	assert.Equal(t, ExitUsage, code)

	// watch undoes an lxc-stop by hand, and SIGTERM leaves the container running.
	state := func() string {
		out, code := stint("--json", "ps")
		require.Equal(t, 0, code, out)
		var rows []struct{ Name, State string }
		require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
		for _, r := range rows {
			if r.Name == "clitest.app" {
				return r.State
			}
		}
		return "absent"
	}
	watch := exec.Command(bin, "--root", root, "watch", "--resync", "1s", specs)
	watchOut := &testenv.SyncBuffer{}
	watch.Stdout, watch.Stderr = watchOut, watchOut
	require.NoError(t, watch.Start())
	t.Cleanup(func() { _ = watch.Process.Kill() }) // only if the test failed before SIGTERM
	stopOut, err := exec.Command("lxc-stop", "-P", filepath.Join(root, "containers"), "-n", "clitest.app", "-k").CombinedOutput()
	require.NoError(t, err, "%s", stopOut)
	stopped := time.Now()
	// Wait for watch to say it started the container again: polling the
	// state alone races with lxc-stop (the container may still read as
	// running just after lxc-stop returns).
	for !strings.Contains(watchOut.String(), "app started") || state() != "running" {
		require.Less(t, time.Since(stopped), 2*time.Second+5*time.Second, "watch did not restart it; watch said:\n%s", watchOut.String())
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, watch.Process.Signal(syscall.SIGTERM))
	require.NoError(t, watch.Wait(), "watch exits 0 on SIGTERM; it said:\n%s", watchOut.String())
	assert.Contains(t, watchOut.String(), "app started")
	assert.Equal(t, "running", state(), "SIGTERM leaves containers running")
	out, code = stint("ps")
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `(?m)^clitest\.app +container +clitest +- +running `, out, "ps shows the spec set")

	out, code = stint("down", specs)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "app deleted")
	out, code = stint("--json", "ps")
	require.Equal(t, 0, code, out)
	assert.JSONEq(t, "[]", out)
	ents, err := os.ReadDir(filepath.Join(root, "containers"))
	require.NoError(t, err)
	assert.Empty(t, ents)

	// A bad spec is exit 2 with file:line, and nothing is created.
	require.NoError(t, os.WriteFile(filepath.Join(specs, "app.toml"), []byte("version = 1\n[container.app]\nimage = \"bb\"\nstat = \"running\"\n"), 0o644))
	out, code = stint("apply", specs)
	assert.Equal(t, ExitUsage, code, out)
	assert.Contains(t, out, "app.toml:4")
}
