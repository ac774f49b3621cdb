package runner_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/container/containertest"
	"github.com/stintdev/stint/runner/output"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
	"github.com/stintdev/stint/storage"
)

// The job lifecycle on the fake Runtime: no LXC, no root. Each test checks
// that every resource (container, clone volume, state record) is released
// exactly once on its path: success, failure, timeout, cancel, a failed
// launch, a failed teardown.

// fakeImage is an image whose root filesystem is one file.
type fakeImage struct{}

func (fakeImage) ResolveImage(context.Context, string) (runner.Image, error) {
	return runner.Image{Fingerprint: "f00d0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab",
		Source: storage.SourceFunc(func(_ context.Context, dir string) error {
			if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "out", "result.txt"), []byte("42\n"), 0o644)
		})}, nil
}

type lifecycle struct {
	fake   *containertest.Fake
	r      *runner.Runner
	st     *state.Store
	drv    storage.Driver
	events []output.Event
}

func newLifecycle(t *testing.T) *lifecycle {
	t.Helper()
	root := t.TempDir()
	drv, err := storage.Open(context.Background(), storage.Config{Driver: "dir", Root: root})
	require.NoError(t, err)
	t.Cleanup(func() {
		// The golden (sealed read-only as root) before the directory goes.
		var ids []string
		_ = drv.Walk(context.Background(), func(v storage.Volume) error { ids = append(ids, v.ID); return nil })
		for i := len(ids) - 1; i >= 0; i-- {
			_ = drv.Destroy(context.Background(), ids[i])
		}
		_ = drv.Close()
	})
	st, err := state.Open(filepath.Join(root, "state"))
	require.NoError(t, err)
	l := &lifecycle{fake: containertest.NewFake(), st: st, drv: drv}
	l.r = &runner.Runner{Runtime: l.fake, Storage: drv, State: st, Images: fakeImage{},
		LogDir: filepath.Join(root, "logs"), ArtifactsDir: filepath.Join(root, "artifacts"), Collect: runner.CollectLocal}
	l.r.Events = func(ev output.Event) { l.events = append(l.events, ev) }
	return l
}

func fakeJob(name string, lines ...string) spec.Job {
	// Privileged: the fake's clone needs no id-map shift (no root).
	return spec.Job{Name: name, Image: "img", Run: lines, Privileged: true}
}

// released asserts container name was destroyed exactly once and nothing
// of it is left: no record, no clone.
func (l *lifecycle) released(t *testing.T, name string) {
	t.Helper()
	assert.Equal(t, 1, l.fake.Calls(containertest.OpDestroy, name), "destroys of %s", name)
	assert.Nil(t, l.fake.Container(name))
	_, err := l.st.Get(name)
	assert.ErrorIs(t, err, state.ErrNotFound, "record of %s left", name)
	_, err = l.drv.Get(context.Background(), name)
	assert.ErrorIs(t, err, storage.ErrNotFound, "clone of %s left", name)
}

func TestFakePasses(t *testing.T) {
	l := newLifecycle(t)
	j := fakeJob("ok", "true", "true")
	j.Artifacts = []spec.Artifact{{Path: "/out/*", When: spec.WhenAlways}, {Path: "/missing", When: spec.WhenAlways}}
	l.fake.Script = containertest.Exit(container.ExitStatus{})
	res := l.r.RunJob(context.Background(), j)
	assert.Equal(t, runner.OutcomePassed, res.Outcome, res.Error)
	assert.Equal(t, 2, l.fake.Calls(containertest.OpExec, res.Container))
	assert.Equal(t, 1, l.fake.Calls(containertest.OpFreeze, res.Container), "artifacts are read frozen")
	assert.Equal(t, []string{"/out/result.txt"}, res.Files)
	l.released(t, res.Container)
	var arts []output.Event
	for _, ev := range l.events {
		if ev.Type == output.EventArtifact {
			arts = append(arts, ev)
		}
	}
	if assert.Len(t, arts, 2) {
		assert.Equal(t, int64(3), arts[0].Bytes, "an artifact event carries its bytes")
		assert.Equal(t, "/missing", arts[1].Artifact)
		assert.NotEmpty(t, arts[1].Reason, "a skipped artifact says why")
	}
}

func TestFakeFails(t *testing.T) {
	l := newLifecycle(t)
	l.fake.Script = containertest.Exit(container.ExitStatus{}, container.ExitStatus{Code: 3}, container.ExitStatus{})
	res := l.r.RunJob(context.Background(), fakeJob("bad", "a", "b", "c"))
	assert.Equal(t, runner.OutcomeFailed, res.Outcome)
	assert.Equal(t, 2, res.Line)
	assert.Equal(t, &container.ExitStatus{Code: 3}, res.Status)
	assert.Equal(t, 2, l.fake.Calls(containertest.OpExec, res.Container), "the first failure stops the job")
	l.released(t, res.Container)
}

func TestFakeTimeout(t *testing.T) {
	l := newLifecycle(t)
	l.fake.Script = containertest.Hang
	j := fakeJob("slow", "sleep")
	j.Timeout = spec.Duration(100 * time.Millisecond)
	res := l.r.RunJob(context.Background(), j)
	assert.Equal(t, runner.OutcomeTimeout, res.Outcome, res.Error)
	assert.Contains(t, res.Error, "timed out after 100ms")
	l.released(t, res.Container)
}

func TestFakeCancelled(t *testing.T) {
	l := newLifecycle(t)
	ctx, cancel := context.WithCancel(context.Background())
	// Cancelled while the line runs (SIGINT mid-job), not before the
	// container exists.
	l.fake.Script = func(ctx context.Context, c *containertest.FakeContainer, opts container.ExecOptions) (container.ExitStatus, error) {
		cancel()
		return containertest.Hang(ctx, c, opts)
	}
	res := l.r.RunJob(ctx, fakeJob("abort", "sleep"))
	assert.Equal(t, runner.OutcomeAborted, res.Outcome, res.Error)
	l.released(t, res.Container)
}

func TestFakeKilledBySignal(t *testing.T) {
	l := newLifecycle(t)
	l.fake.Script = containertest.Exit(container.ExitStatus{Code: 137, Signal: syscall.SIGKILL, OOM: true})
	res := l.r.RunJob(context.Background(), fakeJob("oom", "eat"))
	assert.Equal(t, runner.OutcomeFailed, res.Outcome)
	assert.True(t, res.Status.OOM)
	l.released(t, res.Container)
}

// TestFakeLaunchFails: a runtime failure at each launch step is a host
// failure, and what was made before it is torn down once.
func TestFakeLaunchFails(t *testing.T) {
	for _, op := range []containertest.Op{containertest.OpCreate, containertest.OpStart} {
		t.Run(string(op), func(t *testing.T) {
			l := newLifecycle(t)
			l.fake.Fail = func(o containertest.Op, _ string) error {
				if o == op {
					return errors.New("injected")
				}
				return nil
			}
			res := l.r.RunJob(context.Background(), fakeJob("x", "true"))
			assert.Equal(t, runner.OutcomeError, res.Outcome)
			assert.Contains(t, res.Error, "job x: "+string(op)+" container "+res.Container+": injected")
			assert.Zero(t, l.fake.Calls(containertest.OpExec, res.Container))
			l.released(t, res.Container)
		})
	}
}

// TestFakeTeardownFails: a failed teardown makes a passed job a host
// failure and keeps the record for gc, which removes everything later.
func TestFakeTeardownFails(t *testing.T) {
	l := newLifecycle(t)
	broken := true
	l.fake.Fail = func(o containertest.Op, _ string) error {
		if o == containertest.OpDestroy && broken {
			return errors.New("injected")
		}
		return nil
	}
	res := l.r.RunJob(context.Background(), fakeJob("td", "true"))
	assert.Equal(t, runner.OutcomeError, res.Outcome)
	assert.Contains(t, res.Error, "teardown of "+res.Container)
	_, err := l.st.Get(res.Container)
	require.NoError(t, err, "the record stays for gc")

	broken = false
	gc, err := l.r.GC(context.Background(), runner.GCOptions{})
	require.NoError(t, err)
	assert.Contains(t, gc.Removed, res.Container)
	_, err = l.st.Get(res.Container)
	assert.ErrorIs(t, err, state.ErrNotFound)
}

func TestFakeKeptOnFailure(t *testing.T) {
	l := newLifecycle(t)
	l.fake.Script = containertest.Exit(container.ExitStatus{Code: 1})
	j := fakeJob("keep", "false")
	j.KeepOnFailure = true
	res := l.r.RunJob(context.Background(), j)
	assert.Equal(t, runner.OutcomeFailed, res.Outcome)
	assert.True(t, res.Kept)
	assert.Zero(t, l.fake.Calls(containertest.OpDestroy, res.Container))
	rec, err := l.st.Get(res.Container)
	require.NoError(t, err)
	assert.True(t, rec.Kept)

	gc, err := l.r.GC(context.Background(), runner.GCOptions{Kept: true})
	require.NoError(t, err)
	assert.Contains(t, gc.Removed, res.Container)
	l.released(t, res.Container)
}

func TestFakeExec(t *testing.T) {
	l := newLifecycle(t)
	var name string
	l.fake.Script = func(_ context.Context, c *containertest.FakeContainer, opts container.ExecOptions) (container.ExitStatus, error) {
		name = c.Name
		assert.Equal(t, []string{"echo", "hi"}, opts.Argv)
		return container.ExitStatus{Code: 5}, nil
	}
	st, err := l.r.Exec(context.Background(), spec.Job{Image: "img", Privileged: true}, []string{"echo", "hi"}, container.ExecOptions{})
	require.NoError(t, err)
	assert.Equal(t, 5, st.Code)
	l.released(t, name)

	l.fake.Script = containertest.Hang
	_, err = l.r.Exec(context.Background(), spec.Job{Image: "img", Privileged: true, Timeout: spec.Duration(50 * time.Millisecond)}, []string{"sleep"}, container.ExecOptions{})
	assert.ErrorIs(t, err, runner.ErrTimedOut)
}

// imageRooted is a runtime that makes roots from images itself, with a
// file API showing an /etc/passwd.
type imageRooted struct {
	*containertest.Fake
	st   *state.Store
	cfg  container.Config
	rec  state.Record
	home []string
}

func (*imageRooted) Capabilities() container.Capabilities {
	return container.Capabilities{ImageRoot: true}
}

func (r *imageRooted) Create(ctx context.Context, name string, cfg container.Config) error {
	r.cfg = cfg
	if recs, err := r.st.List(); err == nil && len(recs) == 1 {
		r.rec = recs[0]
	}
	return r.Fake.Create(ctx, name, cfg)
}

func (r *imageRooted) Exec(ctx context.Context, name string, opts container.ExecOptions) (container.ExitStatus, error) {
	for _, e := range opts.Env {
		if strings.HasPrefix(e, "HOME=") {
			r.home = append(r.home, e)
		}
	}
	return r.Fake.Exec(ctx, name, opts)
}

func (*imageRooted) Files(context.Context, string) (fs.FS, error) {
	return fstest.MapFS{"etc/passwd": {Data: []byte("root:x:0:0::/root:/bin/sh\nbuilder:x:1000:1000::/home/builder:/bin/sh\n")}}, nil
}

// TestFakeImageRoot: an image-rooted runtime gets Root.Image (the
// image's fingerprint) and no root directory; the engine makes no golden
// volume or clone, resolves the user through the runtime's files, journals
// the record before Create, and releases everything after the job.
func TestFakeImageRoot(t *testing.T) {
	l := newLifecycle(t)
	rt := &imageRooted{Fake: l.fake, st: l.st}
	l.r.Runtime = rt
	l.r.Remote = "lab"
	job := fakeJob("remote", "true")
	job.User = "builder"
	res := l.r.RunJob(context.Background(), job)
	require.Equal(t, runner.OutcomePassed, res.Outcome, res.Error)
	assert.Equal(t, 1, l.fake.Calls(containertest.OpCreate, res.Container))
	require.NotNil(t, rt.cfg.Root.Image)
	assert.Equal(t, "f00d0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab", rt.cfg.Root.Image.Fingerprint)
	assert.Empty(t, rt.cfg.Root.Dir)
	assert.Nil(t, rt.cfg.IDMap)
	assert.Equal(t, "lab", rt.rec.Remote, "journalled before Create, naming the remote")
	assert.Equal(t, []string{"HOME=/home/builder"}, rt.home)
	var vols []string
	require.NoError(t, l.drv.Walk(context.Background(), func(v storage.Volume) error { vols = append(vols, v.ID); return nil }))
	assert.Empty(t, vols, "no golden volume, no clone")
	recs, err := l.st.List()
	require.NoError(t, err)
	assert.Empty(t, recs)
}
