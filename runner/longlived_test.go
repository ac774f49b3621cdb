package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/lxcrt"
	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
	"github.com/stintdev/stint/storage"
)

// host is a whole stint root on real LXC: runtime, storage (overlay, else
// dir), state journal, image store, and the LongLived over them.
type host struct {
	root    string
	rt      *lxcrt.Runtime
	drv     storage.Driver
	backend *LongLived
}

func newHost(t *testing.T) *host {
	t.Helper()
	testenv.RequiresLXC(t)
	testenv.RequiresTool(t, "busybox", "lxc-stop")
	ctx := context.Background()
	root := t.TempDir()
	// Unprivileged containers (mapped root) must reach their rootfs and
	// start script: every parent directory searchable.
	testenv.Reachable(t, root)
	rt, err := lxcrt.New(filepath.Join(root, "containers"))
	require.NoError(t, err)
	drv, err := storage.Open(ctx, storage.Config{Driver: "overlay", Root: root})
	if err != nil {
		drv, err = storage.Open(ctx, storage.Config{Driver: "dir", Root: root})
	}
	require.NoError(t, err)
	st, err := state.Open(filepath.Join(root, "state"))
	require.NoError(t, err)
	imgs, err := images.Open(filepath.Join(root, "images"))
	require.NoError(t, err)
	m, err := idmap.Ensure("/etc/subuid", "/etc/subgid")
	require.NoError(t, err)
	r := &Runner{Runtime: rt, Storage: drv, State: st, IDMap: m,
		CacheDir: filepath.Join(root, "cache"), LogDir: filepath.Join(root, "logs")}
	h := &host{root: root, rt: rt, drv: drv, backend: &LongLived{
		Runner:  r,
		Images:  func(s *spec.Set) ImageResolver { return &StoreImages{Store: imgs, Set: s} },
		SpecDir: filepath.Join(root, "reconcile"),
		LogDir:  filepath.Join(root, "logs"),
	}}
	t.Cleanup(func() {
		// Whatever a failed test left: every owned container, then any
		// container in the LXC path, then the pool's volumes.
		recs, _ := h.backend.Records()
		for _, rec := range recs {
			if err := h.backend.Destroy(ctx, rec.Set, reconcile.SpecName(rec.Name)); err != nil {
				t.Errorf("cleanup %s: %v", rec.Name, err)
			}
		}
		names, _ := rt.List(ctx)
		for _, n := range names {
			_ = rt.Destroy(ctx, n)
		}
		var vols []storage.Volume
		_ = drv.Walk(ctx, func(v storage.Volume) error { vols = append(vols, v); return nil })
		for i := len(vols) - 1; i >= 0; i-- { // clones before goldens
			_ = drv.Destroy(ctx, vols[i].ID)
		}
		_ = drv.Close()
	})
	return h
}

// specDir writes a spec file for set with the given [container.*] tables.
func specDir(t *testing.T, set, containers string) string {
	t.Helper()
	dir := t.TempDir()
	writeSpec(t, dir, set, containers)
	return dir
}

func writeSpec(t *testing.T, dir, set, containers string) {
	t.Helper()
	body := "version = 1\nname = \"" + set + "\"\n\n[image.bb]\nbuilder = \"busybox\"\n\n" + containers
	// Write and rename, as editors do.
	tmp := filepath.Join(dir, ".stint.toml.tmp")
	require.NoError(t, os.WriteFile(tmp, []byte(body), 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, "stint.toml")))
}

func (h *host) plan(t *testing.T, dir string) (*spec.Set, []reconcile.Action) {
	t.Helper()
	set, err := reconcile.LoadSpecs([]string{dir}, spec.Options{})
	require.NoError(t, err)
	actual, err := h.backend.List(context.Background(), set.Name)
	require.NoError(t, err)
	return set, reconcile.Plan(set.Containers, set.Name, actual)
}

func (h *host) apply(t *testing.T, dir string) []reconcile.Action {
	t.Helper()
	set, err := reconcile.LoadSpecs([]string{dir}, spec.Options{})
	require.NoError(t, err)
	h.backend.UseSet(set)
	actions, _, err := reconcile.Once(context.Background(), h.backend, set.Name, set.Containers, 4)
	require.NoError(t, err)
	return actions
}

func (h *host) state(t *testing.T, set, name string) container.State {
	t.Helper()
	st, err := h.rt.State(context.Background(), reconcile.RuntimeName(set, name))
	require.NoError(t, err)
	return st
}

// consoleHas waits up to 10s for the container's console log to hold s.
func (h *host) consoleHas(t *testing.T, set, name, s string) {
	t.Helper()
	path := h.backend.ConsoleLog(reconcile.RuntimeName(set, name))
	var got []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		got, _ = os.ReadFile(path)
		if strings.Contains(string(got), s) {
			return
		}
	}
	t.Fatalf("console log %s does not show %q; it has:\n%s", path, s, got)
}

func kinds(actions []reconcile.Action) map[string]reconcile.Kind {
	out := map[string]reconcile.Kind{}
	for _, a := range actions {
		out[a.Name] = a.Kind
	}
	return out
}

const webV1 = `[container.web]
image = "bb"
command = ["/bin/sh", "-c", "echo \"hello $GREETING v1\"; exec sleep 100000"]
env = { GREETING = "from web" }
`

func TestLongLivedApplyRecreateDelete(t *testing.T) {
	h := newHost(t)
	dir := specDir(t, "alpha", webV1+`
[container.idle]
image = "bb"
state = "stopped"
`)
	acts := h.apply(t, dir)
	assert.Equal(t, map[string]reconcile.Kind{"web": reconcile.KindCreate, "idle": reconcile.KindCreate}, kinds(acts))
	assert.Equal(t, container.StateRunning, h.state(t, "alpha", "web"))
	assert.Equal(t, container.StateStopped, h.state(t, "alpha", "idle"))
	h.consoleHas(t, "alpha", "web", "hello from web v1")

	// A second apply changes nothing and writes nothing.
	before := h.backend.Runner.State.Stats()
	acts = h.apply(t, dir)
	assert.Equal(t, map[string]reconcile.Kind{"web": reconcile.KindNone, "idle": reconcile.KindNone}, kinds(acts))
	assert.Equal(t, before, h.backend.Runner.State.Stats(), "no state writes")

	// A new command: plan says recreate, apply does it.
	writeSpec(t, dir, "alpha", strings.ReplaceAll(webV1, "v1", "v2")+`
[container.idle]
image = "bb"
state = "stopped"
`)
	_, acts = h.plan(t, dir)
	require.Equal(t, map[string]reconcile.Kind{"web": reconcile.KindRecreate, "idle": reconcile.KindNone}, kinds(acts))
	assert.Contains(t, acts[1].Reasons[0], "command changed: ")
	h.apply(t, dir)
	assert.Equal(t, container.StateRunning, h.state(t, "alpha", "web"))
	h.consoleHas(t, "alpha", "web", "hello from web v2")

	// Removed from the spec: deleted, with everything it had.
	writeSpec(t, dir, "alpha", strings.ReplaceAll(webV1, "v1", "v2"))
	acts = h.apply(t, dir)
	assert.Equal(t, map[string]reconcile.Kind{"web": reconcile.KindNone, "idle": reconcile.KindDelete}, kinds(acts))
	assert.Equal(t, container.StateAbsent, h.state(t, "alpha", "idle"))
	_, err := h.drv.Get(context.Background(), reconcile.RuntimeName("alpha", "idle"))
	assert.ErrorIs(t, err, storage.ErrNotFound)
}

func TestLongLivedTwoSetsAndDown(t *testing.T) {
	h := newHost(t)
	a := specDir(t, "alpha", webV1)
	b := specDir(t, "beta", webV1)
	h.apply(t, a)
	h.apply(t, b)
	assert.Equal(t, container.StateRunning, h.state(t, "alpha", "web"))
	assert.Equal(t, container.StateRunning, h.state(t, "beta", "web"))

	// An unowned container in stint's LXC path is never touched.
	ctx := context.Background()
	require.NoError(t, os.MkdirAll(filepath.Join(h.root, "containers", "alpha.stray"), 0o755))

	// alpha's spec loses web: only alpha's web goes.
	writeSpec(t, a, "alpha", "")
	acts := h.apply(t, a)
	assert.Equal(t, map[string]reconcile.Kind{"web": reconcile.KindDelete}, kinds(acts))
	assert.Equal(t, container.StateAbsent, h.state(t, "alpha", "web"))
	assert.Equal(t, container.StateRunning, h.state(t, "beta", "web"))
	assert.DirExists(t, filepath.Join(h.root, "containers", "alpha.stray"))

	// down beta: nothing of beta is left.
	actual, err := h.backend.List(ctx, "beta")
	require.NoError(t, err)
	_, err = reconcile.Apply(ctx, h.backend, reconcile.Down("beta", actual), 4)
	require.NoError(t, err)
	recs, err := h.backend.Records()
	require.NoError(t, err)
	assert.Empty(t, recs)
	names, err := h.rt.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"alpha.stray"}, names)
	var clones []string
	require.NoError(t, h.drv.Walk(ctx, func(v storage.Volume) error {
		if v.Kind == storage.KindClone {
			clones = append(clones, v.ID)
		}
		return nil
	}))
	assert.Empty(t, clones)
	for _, d := range []string{"reconcile", "reconcile/run", "logs"} {
		ents, _ := os.ReadDir(filepath.Join(h.root, d))
		for _, e := range ents {
			if !e.IsDir() {
				t.Errorf("left behind: %s/%s", d, e.Name())
			}
		}
	}
}

func TestLongLivedImageInit(t *testing.T) {
	h := newHost(t)
	dir := specDir(t, "gamma", "[container.box]\nimage = \"bb\"\n")
	h.apply(t, dir)
	assert.Equal(t, container.StateRunning, h.state(t, "gamma", "box"))
	// busybox init runs the image's inittab; PID 1 is init, not our sleep.
	// busybox init renames itself "init"; anything else after a moment
	// means our script did not exec it. (Right after the start, PID 1 may
	// still be the script's shell.)
	var pid1 string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		cmdline, err := exec.Command("lxc-attach", "-P", filepath.Join(h.root, "containers"), "-n", reconcile.RuntimeName("gamma", "box"),
			"--", "/bin/cat", "/proc/1/cmdline").Output()
		require.NoError(t, err)
		if pid1 = strings.TrimRight(string(cmdline), "\x00"); pid1 == "init" || pid1 == "/sbin/init" {
			break
		}
	}
	assert.Contains(t, []string{"init", "/sbin/init"}, pid1)
	assert.Equal(t, container.StateRunning, h.state(t, "gamma", "box"), "init keeps running")
}

func TestLongLivedWatch(t *testing.T) {
	h := newHost(t)
	dir := specDir(t, "delta", webV1)
	passes := make(chan reconcile.Pass, 100)
	w := &reconcile.Watcher{
		Paths:   []string{dir},
		Load:    func() (*spec.Set, error) { return reconcile.LoadSpecs([]string{dir}, spec.Options{}) },
		Backend: h.backend, Parallelism: 2,
		Resync: time.Second, Debounce: 100 * time.Millisecond,
		Report: func(p reconcile.Pass) { passes <- p },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	next := func() reconcile.Pass {
		t.Helper()
		select {
		case p := <-passes:
			return p
		case <-time.After(60 * time.Second):
			t.Fatal("no pass within 60s")
			return reconcile.Pass{}
		}
	}
	p := next()
	require.NoError(t, p.Err)
	require.Equal(t, container.StateRunning, h.state(t, "delta", "web"))

	// lxc-stop by hand: undone within two resync periods.
	out, err := exec.Command("lxc-stop", "-P", filepath.Join(h.root, "containers"), "-n", reconcile.RuntimeName("delta", "web"), "-k").CombinedOutput()
	require.NoError(t, err, "%s", out)
	stopped := time.Now()
	for h.state(t, "delta", "web") != container.StateRunning {
		require.Less(t, time.Since(stopped), 2*w.Resync+5*time.Second, "not restarted by the resync")
		time.Sleep(50 * time.Millisecond)
	}

	// An invalid edit: reported with file:line, nothing torn down.
	drain(passes)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stint.toml"),
		[]byte("version = 1\nname = \"delta\"\n[container.web]\nimage = \"bb\"\ncomand = [\"x\"]\n"), 0o644))
	for p = next(); !p.Invalid; p = next() {
	}
	assert.Contains(t, p.Error, filepath.Join(dir, "stint.toml")+":5")
	time.Sleep(2 * w.Resync)
	assert.Equal(t, container.StateRunning, h.state(t, "delta", "web"))
	recs, err := h.backend.Records()
	require.NoError(t, err)
	assert.Len(t, recs, 1)

	// SIGTERM (context end): watching stops, the container runs on.
	cancel()
	require.NoError(t, <-done)
	done <- nil
	assert.Equal(t, container.StateRunning, h.state(t, "delta", "web"))
}

func drain(c chan reconcile.Pass) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func TestLongLivedRecreatesWhatWasDeletedByHand(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	dir := specDir(t, "eps", webV1)
	h.apply(t, dir)
	name := reconcile.RuntimeName("eps", "web")

	// lxc-destroy by hand: the record stays, the container is gone.
	require.NoError(t, h.rt.Destroy(ctx, name))
	_, acts := h.plan(t, dir)
	require.Equal(t, map[string]reconcile.Kind{"web": reconcile.KindRecreate}, kinds(acts))
	assert.Contains(t, acts[0].Reasons[0], "container missing")
	h.apply(t, dir)
	assert.Equal(t, container.StateRunning, h.state(t, "eps", "web"))

	// A crash mid-create (kill -9) leaves a record in phase "creating":
	// also made again, not trusted.
	hd, err := h.backend.Runner.State.Claim(name)
	require.NoError(t, err)
	require.NoError(t, hd.Update(func(r *state.Record) { r.Phase = "creating" }))
	require.NoError(t, hd.Release())
	_, acts = h.plan(t, dir)
	require.Equal(t, map[string]reconcile.Kind{"web": reconcile.KindRecreate}, kinds(acts))
	h.apply(t, dir)
	assert.Equal(t, container.StateRunning, h.state(t, "eps", "web"))
	_, acts = h.plan(t, dir)
	assert.Equal(t, map[string]reconcile.Kind{"web": reconcile.KindNone}, kinds(acts))
}
