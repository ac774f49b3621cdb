package runner_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/internal/testenv"
	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/runner/lxcrt"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
	"github.com/stintdev/stint/storage"
)

func TestMain(m *testing.M) {
	if lxcrt.IsHelper(os.Args) {
		lxcrt.HelperMain()
	}
	os.Exit(m.Run())
}

type fixture struct {
	root string
	r    *runner.Runner
	out  *testenv.SyncBuffer
}

// newRunner builds a real runner over a fresh --root: overlay storage, the
// busybox image, the LXC runtime, a state journal.
func newRunner(t *testing.T) *fixture {
	t.Helper()
	testenv.RequiresLXC(t)
	testenv.RequiresTool(t, "busybox")
	root := t.TempDir()
	testenv.Reachable(t, root)
	ctx := context.Background()
	drv, err := storage.Open(ctx, storage.Config{Driver: "overlay", Root: root})
	require.NoError(t, err)
	imgs, err := images.Open(filepath.Join(root, "images"))
	require.NoError(t, err)
	rt, err := lxcrt.New(filepath.Join(root, "containers"))
	require.NoError(t, err)
	st, err := state.Open(filepath.Join(root, "state"))
	require.NoError(t, err)
	idm, err := idmap.Ensure("/etc/subuid", "/etc/subgid")
	require.NoError(t, err)
	f := &fixture{root: root, out: &testenv.SyncBuffer{}}
	f.r = &runner.Runner{
		Runtime: rt, Storage: drv, State: st, IDMap: idm,
		Images:       &runner.StoreImages{Store: imgs, Set: &spec.Set{Images: []spec.Image{{Name: "busybox", Builder: "busybox"}}}},
		CacheDir:     filepath.Join(root, "cache"),
		ArtifactsDir: filepath.Join(root, "artifacts"),
		LogDir:       filepath.Join(root, "logs"),
		Output:       f.out,
		BuildOutput:  f.out,
	}
	t.Cleanup(func() {
		// Whatever a failed test left: gc everything, then the goldens.
		_, _ = f.r.GC(context.Background(), runner.GCOptions{Kept: true})
		var ids []string
		_ = drv.Walk(context.Background(), func(v storage.Volume) error { ids = append(ids, v.ID); return nil })
		for i := len(ids) - 1; i >= 0; i-- {
			_ = drv.Destroy(context.Background(), ids[i])
		}
		_ = drv.Close()
	})
	return f
}

func job(name string, lines ...string) spec.Job {
	return spec.Job{Name: name, Base: name, Image: "busybox", Run: lines, Network: spec.Network{Mode: "none"}}
}

// assertClean checks that nothing of the fixture's jobs is left: no
// container, no clone, no record, no mount beyond the goldens'.
func (f *fixture) assertClean(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.root, "containers"))
	require.NoError(t, err)
	assert.Empty(t, ents, "containers left in the LXC path")
	recs, err := f.r.State.List()
	require.NoError(t, err)
	assert.Empty(t, recs, "state records left")
	require.NoError(t, f.r.Storage.Walk(context.Background(), func(v storage.Volume) error {
		assert.Equal(t, storage.KindGolden, v.Kind, "clone %s left", v.ID)
		return nil
	}))
	assert.Empty(t, clonesMounted(t, f.root), "clone mounts left")
}

// clonesMounted lists mounts under root that are not golden volumes.
func clonesMounted(t *testing.T, root string) []string {
	fh, err := os.Open("/proc/self/mountinfo")
	require.NoError(t, err)
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 4 && strings.HasPrefix(fs[4], root+"/") && !strings.Contains(fs[4], "golden-") && !strings.Contains(fs[4], "/volumes/cache.") {
			out = append(out, fs[4])
		}
	}
	return out
}

func TestJobPasses(t *testing.T) {
	f := newRunner(t)
	t.Setenv("STINT_CANARY", "leaked")
	j := job("ok", "echo hello from $(id -u)", "env | sort", "cat /proc/self/uid_map", "cd /tmp && pwd", "echo hostname $(cat /etc/hostname)")
	j.Env = map[string]string{"GREETING": "hi"}
	res := f.r.RunJob(context.Background(), j)
	require.True(t, res.Passed(), "%+v\n%s", res, f.out.String())
	out := f.out.String()
	assert.Contains(t, out, "[ok] hello from 0\n")
	assert.Contains(t, out, "[ok] GREETING=hi\n")
	assert.Contains(t, out, "[ok] HOME=/root\n")
	assert.NotContains(t, out, "STINT_CANARY", "the host's environment leaked into the job")
	assert.Contains(t, out, "[ok] hostname "+res.Container+"\n", "the image's create templates were not rendered")
	// Unprivileged by default: container root is not host root.
	assert.Regexp(t, `\[ok\] +0 +[1-9][0-9]* +[0-9]+\n`, out)
	assert.NotContains(t, out, "[ok]          0          0 4294967295")
	log, err := os.ReadFile(res.Log)
	require.NoError(t, err)
	assert.Contains(t, string(log), "hello from 0")
	f.assertClean(t)
}

func TestJobFailsStopsAtFirstFailure(t *testing.T) {
	f := newRunner(t)
	res := f.r.RunJob(context.Background(), job("bad", "echo one", "exit 3", "echo never"))
	assert.Equal(t, runner.OutcomeFailed, res.Outcome)
	assert.Equal(t, 2, res.Line)
	require.NotNil(t, res.Status)
	assert.Equal(t, 3, res.Status.Code)
	assert.Contains(t, f.out.String(), "[bad] one")
	assert.NotContains(t, f.out.String(), "never", "a line after the failing one ran")
	f.assertClean(t)
}

func TestJobTimeout(t *testing.T) {
	f := newRunner(t)
	j := job("slow", "echo start", "sleep 600", "echo never")
	j.Timeout = spec.Duration(2 * time.Second)
	begin := time.Now()
	res := f.r.RunJob(context.Background(), j)
	assert.Equal(t, runner.OutcomeTimeout, res.Outcome, "%+v", res)
	assert.Equal(t, 2, res.Line)
	assert.Less(t, time.Since(begin), 60*time.Second)
	assert.NotContains(t, f.out.String(), "never")
	f.assertClean(t)
}

func TestJobCancelled(t *testing.T) {
	f := newRunner(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(3*time.Second, cancel)
	res := f.r.RunJob(ctx, job("cancelled", "sleep 600"))
	assert.Equal(t, runner.OutcomeAborted, res.Outcome, "%+v", res)
	f.assertClean(t)
}

func TestMountsReadonlyAndCache(t *testing.T) {
	f := newRunner(t)
	src := t.TempDir()
	require.NoError(t, os.Chmod(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "input.txt"), []byte("payload\n"), 0o644))
	mounts := []spec.Mount{
		{Type: spec.MountBind, Source: src, Target: "/src", Readonly: true},
		{Type: spec.MountCache, Name: "c1", Target: "/cache"},
		{Type: spec.MountTmpfs, Target: "/scratch", Size: 8 << 20},
	}
	j1 := job("write", "cat /src/input.txt", "if touch /src/x 2>/dev/null; then echo WRITABLE; exit 1; fi", "echo kept > /cache/v", "echo t > /scratch/t")
	j1.Mounts = mounts
	res := f.r.RunJob(context.Background(), j1)
	require.True(t, res.Passed(), "%+v\n%s", res, f.out.String())
	assert.Contains(t, f.out.String(), "[write] payload")
	assert.NoFileExists(t, filepath.Join(src, "x"))

	j2 := job("read", "cat /cache/v")
	j2.Mounts = mounts
	res = f.r.RunJob(context.Background(), j2)
	require.True(t, res.Passed(), "%+v\n%s", res, f.out.String())
	assert.Contains(t, f.out.String(), "[read] kept", "the cache volume did not persist between jobs")
	f.assertClean(t)
}

func TestParallelJobs(t *testing.T) {
	f := newRunner(t)
	before := fdCount(t)
	var jobs []spec.Job
	for i := range 4 {
		jobs = append(jobs, job(fmt.Sprintf("m[i=%d]", i), fmt.Sprintf("echo variant %d", i), "sleep 1"))
	}
	done := make(chan []runner.Result, 1)
	go func() { done <- f.r.RunJobs(context.Background(), jobs, 4) }()
	var results []runner.Result
	select {
	case results = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("parallel jobs hung")
	}
	for i, res := range results {
		assert.True(t, res.Passed(), "%+v", res)
		assert.Contains(t, f.out.String(), fmt.Sprintf("[m[i=%d]] variant %d", i, i))
	}
	assert.Equal(t, before, fdCount(t), "file descriptors leaked")
	f.assertClean(t)
}

func TestKeepOnFailureThenGC(t *testing.T) {
	f := newRunner(t)
	j := job("kept", "exit 1")
	j.KeepOnFailure = true
	res := f.r.RunJob(context.Background(), j)
	assert.Equal(t, runner.OutcomeFailed, res.Outcome)
	assert.True(t, res.Kept)
	recs, err := f.r.State.List()
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.True(t, recs[0].Kept)
	// Plain gc leaves a kept container alone; --kept removes it.
	gc, err := f.r.GC(context.Background(), runner.GCOptions{})
	require.NoError(t, err)
	assert.Empty(t, gc.Removed)
	gc, err = f.r.GC(context.Background(), runner.GCOptions{Kept: true})
	require.NoError(t, err)
	assert.Equal(t, []string{res.Container}, gc.Removed)
	f.assertClean(t)
}

func fdCount(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

func TestLimitsAndOOM(t *testing.T) {
	f := newRunner(t)
	pids := job("pids", "i=0; while [ $i -lt 80 ]; do sleep 30 & i=$((i+1)); done")
	pids.Limits = spec.Limits{Pids: 50}
	res := f.r.RunJob(context.Background(), pids)
	assert.Equal(t, runner.OutcomeFailed, res.Outcome, "%+v\n%s", res, f.out.String())
	assert.Contains(t, f.out.String(), "[pids] /bin/sh: can't fork", "pids limit not applied")

	mem := job("mem", "echo small", "dd if=/dev/zero of=/dev/null bs=256M count=1", "echo never")
	mem.Limits = spec.Limits{Memory: 64 << 20, CPUs: 0.5}
	res = f.r.RunJob(context.Background(), mem)
	assert.Equal(t, runner.OutcomeFailed, res.Outcome, "%+v\n%s", res, f.out.String())
	assert.Equal(t, 2, res.Line)
	require.NotNil(t, res.Status)
	assert.True(t, res.Status.OOM, "OOM kill not reported: %+v", res.Status)
	f.assertClean(t)
}

func TestNetworkAndPrivileged(t *testing.T) {
	f := newRunner(t)
	hostIfs, err := os.ReadDir("/sys/class/net")
	require.NoError(t, err)
	cases := []struct {
		name string
		edit func(*spec.Job)
		want []string // lines the job must print
	}{
		{"none", func(j *spec.Job) {}, []string{"[none] lo\n", "[none] uid_map 0 " + fmt.Sprint(f.r.IDMap.HostUID)}},
		{"host", func(j *spec.Job) { j.Network.Mode = "host" }, []string{"[host] " + hostIfs[0].Name() + "\n"}},
		{"privileged", func(j *spec.Job) { j.Privileged = true }, []string{"[privileged] uid_map 0 0 4294967295\n"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := job(c.name, "ls /sys/class/net", "echo uid_map $(cat /proc/self/uid_map)",
				"echo seccomp $(grep '^Seccomp:' /proc/self/status | cut -f2)")
			c.edit(&j)
			res := f.r.RunJob(context.Background(), j)
			require.True(t, res.Passed(), "%+v\n%s", res, f.out.String())
			for _, w := range c.want {
				assert.Contains(t, f.out.String(), w)
			}
		})
	}
	assert.NotContains(t, f.out.String(), "[none] eth", "network none has more than loopback")
	if _, err := os.Stat(lxcrt.SeccompPolicy); err == nil {
		assert.Contains(t, f.out.String(), "[none] seccomp 2\n", "LXC's seccomp policy is not applied")
	}
	f.assertClean(t)
}

func TestBridgeNetwork(t *testing.T) {
	f := newRunner(t)
	m, err := stintnet.Open(f.root)
	require.NoError(t, err)
	f.r.Net = m
	// The bridge and its rules are this test's own: prune them at the end.
	t.Cleanup(func() { assert.NoError(t, m.Prune(context.Background())) })
	j := job("br", "ip addr; ip route; ls /sys/class/net", "ip -4 addr show eth0", "ping -c 1 -W 5 $(ip route | awk '/default/ {print $3}')", "cat /etc/hosts")
	j.Network = spec.Network{Mode: "bridge", Bridge: fmt.Sprintf("stt%d", os.Getpid()%100000)}
	res := f.r.RunJob(context.Background(), j)
	require.True(t, res.Passed(), "%+v\n%s", res, f.out.String())
	assert.Regexp(t, `\[br\] +inet 10\.`, f.out.String())
	assert.Contains(t, f.out.String(), "1 packets received")
	st, err := m.List(context.Background())
	require.NoError(t, err)
	// The network state is host-wide: other roots' jobs (a test package
	// running beside this one) may hold leases; none may be this root's.
	for name, l := range st.Leases {
		assert.NotEqual(t, f.root, l.Root, "the lease of %s was not released", name)
	}
	f.assertClean(t)
}

// TestArtifactsFromMounts collects artifacts written into a read-write bind
// mount and a tmpfs: they are only visible in the container's own view.
func TestArtifactsFromMounts(t *testing.T) {
	f := newRunner(t)
	f.r.Collect = collect
	src := t.TempDir()
	require.NoError(t, os.Chmod(src, 0o777))
	j := job("mnt", "mkdir -p /src/dist && echo built > /src/dist/out.txt", "echo scratch > /scratch/t.txt", "echo root > /r.txt")
	j.Mounts = []spec.Mount{{Type: spec.MountBind, Source: src, Target: "/src"}, {Type: spec.MountTmpfs, Target: "/scratch"}}
	j.Artifacts = []spec.Artifact{{Path: "/src/dist/*", When: spec.WhenAlways}, {Path: "/scratch/t.txt", When: spec.WhenAlways}, {Path: "/r.txt", When: spec.WhenAlways}}
	res := f.r.RunJob(context.Background(), j)
	require.True(t, res.Passed(), "%+v\n%s", res, f.out.String())
	for name, want := range map[string]string{"out.txt": "built\n", "t.txt": "scratch\n", "r.txt": "root\n"} {
		b, err := os.ReadFile(filepath.Join(res.Artifacts, name))
		if assert.NoError(t, err, name) {
			assert.Equal(t, want, string(b))
		}
	}
	f.assertClean(t)
}

// collect is the CLI's collector: the local one.
var collect = runner.CollectLocal
