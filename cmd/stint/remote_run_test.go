package main

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/lxdenv"
	"github.com/stintdev/stint/storage"
)

// TestRemoteRunDemo: `stint --remote l run testdata/demo/demo.toml` on a
// private LXD over its unix socket collects the same artifacts as the
// local run (the read-only bind copied in, tmpfs, workdir made, env), and
// leaves no instance and no record behind.
func TestRemoteRunDemo(t *testing.T) {
	bin, dir := builtStint(t)
	d := lxdenv.StartDaemon(t)
	demo, err := filepath.Abs("../../testdata/demo/demo.toml")
	require.NoError(t, err)

	local, root := filepath.Join(dir, "local"), filepath.Join(dir, "root")
	stint := stintCLI(t, bin, root)
	t.Cleanup(func() {
		// The local run's golden volume stays mounted: destroy it.
		_ = exec.Command(bin, "--root", root, "gc", "--all").Run()
		ctx := context.Background()
		if drv, err := storage.Open(ctx, storage.Config{Driver: "auto", Root: root}); err == nil {
			var ids []string
			_ = drv.Walk(ctx, func(v storage.Volume) error { ids = append(ids, v.ID); return nil })
			for i := len(ids) - 1; i >= 0; i-- {
				_ = drv.Destroy(ctx, ids[i])
			}
			_ = drv.Close()
		}
	})
	out, code := stint("run", "--artifacts", local, demo)
	require.Equal(t, 0, code, out)

	rem := filepath.Join(dir, "remote")
	out, code = stint("remote", "add", "l", "unix://"+d.Socket)
	require.Equal(t, 0, code, out)
	out, code = stint("--remote", "l", "run", "--artifacts", rem, demo)
	require.Equal(t, 0, code, out)
	t.Logf("remote run:\n%s", out)
	assert.Contains(t, out, "hello from stint: Linux as uid 0, in /work")

	want, got := tree(t, local), tree(t, rem)
	require.Len(t, want, 3, "%v", want)
	assert.Equal(t, want, got)

	assert.Empty(t, lxcList(t, d), "no instance left on the remote")
	out, code = stint("--remote", "l", "ps")
	require.Equal(t, 0, code, out)
	assert.NotContains(t, out, "hello")
}

// tree maps each file under dir to its content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		m[rel] = string(b)
		return err
	}))
	return m
}

// lxcList is the names of the daemon's instances.
func lxcList(t *testing.T, d *lxdenv.Daemon) []string {
	t.Helper()
	var names []string
	names = append(names, strings.Fields(d.MustLxc(t, "list", "--format", "csv", "-c", "n"))...)
	sort.Strings(names)
	return names
}

// TestRemoteKill9ThenGC: a remote job's stint killed with SIGKILL leaves
// its instance (and record); `stint --remote l gc` removes both, and
// nothing of stint's is left on the remote.
func TestRemoteKill9ThenGC(t *testing.T) {
	f := newCLI(t)
	d := lxdenv.StartDaemon(t)
	out, code := f.run(t, "remote", "add", "l", "unix://"+d.Socket)
	require.Equal(t, 0, code, out)
	p := f.spec(t, "[job.long]\nimage = \"busybox\"\nrun = [\"echo started\", \"sleep 600\"]\n"+
		"[job.kept]\nimage = \"busybox\"\nkeep_on_failure = true\nrun = [\"exit 1\"]\n")
	// A local record (a kept job) that no --remote ps may list.
	out, code = f.run(t, "run", p, "kept")
	require.Equal(t, 1, code, out)
	c := f.startUntil(t, "[long] started", "--remote", "l", "run", p, "long")
	require.NoError(t, c.Process.Signal(syscall.SIGKILL))
	_ = c.Wait()
	require.Len(t, lxcList(t, d), 1, "the killed run should have left its instance")
	out, code = f.run(t, "--remote", "l", "ps")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "long")
	assert.NotContains(t, out, "kept", "--remote ps lists only the remote's records")
	// Local ps and gc leave the remote's record alone: it is not theirs.
	out, code = f.run(t, "ps")
	assert.Equal(t, 0, code, out)
	assert.NotContains(t, out, "long", "local ps lists only local records")
	assert.Contains(t, out, "kept")
	out, code = f.run(t, "gc")
	assert.Equal(t, 0, code, out)
	require.Len(t, lxcList(t, d), 1, "a local gc touches no remote instance")
	out, code = f.run(t, "--remote", "l", "ps")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "long", "a local gc keeps the remote's record")
	out, code = f.run(t, "--remote", "l", "gc")
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "removed")
	assert.Empty(t, lxcList(t, d), "nothing of stint's left on the remote")
	out, code = f.run(t, "--remote", "l", "ps")
	assert.Equal(t, 0, code, out)
	assert.NotContains(t, out, "long")
}

// TestRemoteHTTPSCacheAndSymlink: over HTTPS with a trust token, a cache
// volume is kept between two runs, and an artifact symlink pointing out of
// the root is copied as a link (nothing read through it).
func TestRemoteHTTPSCacheAndSymlink(t *testing.T) {
	f := newCLI(t)
	d := lxdenv.StartDaemon(t)
	out, code := f.run(t, "remote", "add", "h", d.URL, "--token", d.TrustToken(t, "stint-run"))
	require.Equal(t, 0, code, out)
	p := f.spec(t, `
[job.c]
image = "busybox"
run = ["echo run >> /cache/log && cat /cache/log", "mkdir -p /out && ln -s /etc/shadow /out/escape && echo hi > /out/f"]

[[job.c.mount]]
type = "cache"
name = "c1"
target = "/cache"

[[job.c.artifact]]
path = "/out/*"
`)
	arts := filepath.Join(f.dir, "arts")
	out, code = f.run(t, "--remote", "h", "run", "--artifacts", arts, p)
	require.Equal(t, 0, code, out)
	out, code = f.run(t, "--remote", "h", "run", "--artifacts", arts, p)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "[c] run\n[c] run\n", "the cache volume kept the first run's line")
	target, err := os.Readlink(filepath.Join(arts, "c", "escape"))
	require.NoError(t, err)
	assert.Equal(t, "/etc/shadow", target)
	b, err := os.ReadFile(filepath.Join(arts, "c", "f"))
	require.NoError(t, err)
	assert.Equal(t, "hi\n", string(b))
	assert.Empty(t, lxcList(t, d), "no instance left on the remote")
}

// TestRemoteFailAndTimeout: on a remote, a failing line makes stint exit 1
// with the line's status, a timeout stops the instance, and both are torn
// down.
func TestRemoteFailAndTimeout(t *testing.T) {
	f := newCLI(t)
	d := lxdenv.StartDaemon(t)
	out, code := f.run(t, "remote", "add", "l", "unix://"+d.Socket)
	require.Equal(t, 0, code, out)
	p := f.spec(t, `
[job.fail]
image = "busybox"
run = ["echo before", "exit 3", "echo never"]

[job.slow]
image = "busybox"
timeout = "3s"
run = ["sleep 60"]
`)
	out, code = f.run(t, "--remote", "l", "run", p)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "[fail] before")
	assert.NotContains(t, out, "[fail] never")
	assert.Contains(t, out, "timed out")
	assert.Empty(t, lxcList(t, d), "no instance left on the remote")
}
