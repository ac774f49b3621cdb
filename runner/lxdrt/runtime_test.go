package lxdrt_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/lxdenv"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/container/containertest"
	"github.com/stintdev/stint/runner/lxdrt"
)

// run creates and starts a container from cfg (the busybox image when it
// has no root), destroyed at cleanup.
func run(t *testing.T, rt *lxdrt.Runtime, cfg container.Config, o lxdrt.CreateOptions) string {
	t.Helper()
	if cfg.Root.Image == nil {
		cfg.Root.Image = busybox(t)
	}
	name := containertest.Name(t)
	ctx := context.Background()
	require.NoError(t, rt.CreateWith(ctx, name, cfg, o))
	t.Cleanup(func() { _ = rt.Destroy(context.Background(), name) })
	require.NoError(t, rt.Start(ctx, name))
	return name
}

// sh runs a script in the container.
func sh(t *testing.T, rt *lxdrt.Runtime, name, script string) (string, container.ExitStatus) {
	t.Helper()
	var out strings.Builder
	st, err := rt.Exec(context.Background(), name, container.ExecOptions{
		Argv: []string{"/bin/sh", "-c", script}, Env: []string{"PATH=/bin:/sbin"}, Stdout: &out, Stderr: &out,
	})
	require.NoError(t, err)
	return out.String(), st
}

// TestRuntime: the pieces of a job on a private LXD, over its unix socket.
func TestRuntime(t *testing.T) {
	d := lxdenv.StartDaemon(t)
	c := connect(t, d)
	rt := runtime(t, c, lxdrt.Options{})

	t.Run("ReadOnlyBind", func(t *testing.T) { testReadOnlyBind(t, rt) })
	t.Run("CacheVolumeTwice", func(t *testing.T) { testCacheVolume(t, rt) })
	t.Run("ArtifactSymlinks", func(t *testing.T) { testArtifactSymlinks(t, rt) })
	t.Run("FailTimeoutCancel", func(t *testing.T) { testFailTimeoutCancel(t, rt) })
	t.Run("Refusals", func(t *testing.T) { testRefusals(t, rt) })
	t.Run("ConfigAndTmpfs", func(t *testing.T) { testConfig(t, rt, d) })
	t.Run("GC", func(t *testing.T) { testGC(t, rt, d) })
	t.Run("InitAndPorts", func(t *testing.T) { testInitAndPorts(t, rt) })
	t.Run("CancelCreate", func(t *testing.T) {
		warm := run(t, rt, container.Config{}, lxdrt.CreateOptions{}) // the image is on the remote
		require.NoError(t, rt.Destroy(context.Background(), warm))
		name := containertest.Name(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Cancelled the moment the instance shows on the server, while its
		// image still unpacks: mid-create on a fast machine as on a slow
		// one (a fixed deadline let an idle machine finish first).
		go func() {
			for ctx.Err() == nil {
				if st, err := rt.State(context.Background(), name); err == nil && st != container.StateAbsent {
					cancel()
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		err := rt.Create(ctx, name, container.Config{Root: container.Root{Image: busybox(t)}})
		require.ErrorIs(t, err, context.Canceled, "cancelled mid-create")
		st, err := rt.State(context.Background(), name)
		require.NoError(t, err)
		assert.Equal(t, container.StateAbsent, st, "a cancelled create leaves nothing")
		assert.NotContains(t, d.MustLxc(t, "list", "-c", "n", "-f", "csv"), lxdrt.InstanceName(name))
	})
	t.Run("LocalDisk", func(t *testing.T) {
		local := runtime(t, c, lxdrt.Options{LocalDisks: true})
		src := t.TempDir()
		require.NoError(t, os.Chmod(src, 0o777))
		name := run(t, local, container.Config{Mounts: []container.Mount{{Source: src, Target: "/work"}}, Privileged: true}, lxdrt.CreateOptions{})
		out, st := sh(t, local, name, "echo hi > /work/out && cat /work/out")
		assert.True(t, st.Success(), out)
		b, err := os.ReadFile(filepath.Join(src, "out"))
		require.NoError(t, err)
		assert.Equal(t, "hi\n", string(b), "a read-write bind on a local socket writes the host's directory")
	})
}

func testReadOnlyBind(t *testing.T, rt *lxdrt.Runtime) {
	src := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "a.txt"), []byte("from the client\n"), 0o644))
	require.NoError(t, os.Symlink("sub/a.txt", filepath.Join(src, "link")))
	require.NoError(t, os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\necho ran\n"), 0o755))
	single := filepath.Join(t.TempDir(), "config.ini")
	require.NoError(t, os.WriteFile(single, []byte("k=v\n"), 0o600))
	for i := 0; i < 300; i++ { // many files go in one request
		require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "f"+strconv.Itoa(i)), []byte("x"), 0o644))
	}
	name := run(t, rt, container.Config{Mounts: []container.Mount{
		{Source: src, Target: "/src", Readonly: true},
		{Source: single, Target: "/etc/app/config.ini", Readonly: true},
	}}, lxdrt.CreateOptions{})
	out, st := sh(t, rt, name, "cat /src/sub/a.txt /src/link /etc/app/config.ini; /src/run.sh; ls /src/sub | wc -l; ls -a / | grep -c stint-binds")
	assert.Equal(t, "from the client\nfrom the client\nk=v\nran\n301\n0\n", out, "tree, link, single file, modes; nothing staged left")
	assert.Equal(t, 1, st.Code, "grep -c found no staging directory")
	out, st = sh(t, rt, name, "touch /src/new 2>&1; echo x >> /etc/app/config.ini 2>&1; echo x >> /src/sub/a.txt")
	assert.False(t, st.Success(), "the bind is read-only inside: %s", out)
	assert.Contains(t, out, "Read-only file system")
}

func testCacheVolume(t *testing.T, rt *lxdrt.Runtime) {
	ctx := context.Background()
	cache := "gocache-" + strconv.Itoa(os.Getpid())
	cfg := container.Config{Mounts: []container.Mount{{Type: container.MountVolume, Volume: cache, Target: "/root/.cache"}}}
	t.Cleanup(func() {
		vols, _ := rt.Volumes(ctx)
		for _, v := range vols {
			_ = rt.DeleteVolume(ctx, v)
		}
	})
	first := run(t, rt, cfg, lxdrt.CreateOptions{})
	out, st := sh(t, rt, first, "echo built > /root/.cache/obj && cat /root/.cache/obj")
	require.True(t, st.Success(), out)
	require.NoError(t, rt.Destroy(ctx, first))
	second := run(t, rt, cfg, lxdrt.CreateOptions{})
	out, st = sh(t, rt, second, "cat /root/.cache/obj")
	assert.True(t, st.Success(), out)
	assert.Equal(t, "built\n", out, "the second job sees the first one's cache")
	vols, err := rt.Volumes(ctx)
	require.NoError(t, err)
	require.Len(t, vols, 1)
	assert.Equal(t, cache, vols[0].Name)
}

func testArtifactSymlinks(t *testing.T, rt *lxdrt.Runtime) {
	ctx := context.Background()
	secret := filepath.Join(t.TempDir(), "host-secret")
	require.NoError(t, os.WriteFile(secret, []byte("host only\n"), 0o644))
	name := run(t, rt, container.Config{}, lxdrt.CreateOptions{})
	out, st := sh(t, rt, name, `mkdir -p /out/d && echo artifact > /out/d/a.txt &&
		ln -s `+secret+` /out/abs && ln -s ../../../../../../`+secret+` /out/rel && ln -s / /out/root &&
		ln -s `+filepath.Dir(secret)+` /out/hostdir`)
	require.True(t, st.Success(), out)
	require.NoError(t, rt.Freeze(ctx, name), "frozen while artifacts are read")
	st2, err := rt.State(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, container.StateOther, st2)
	t.Cleanup(func() { assert.NoError(t, rt.Stop(context.Background(), name), "a frozen instance stops") })
	fsys, err := rt.Files(ctx, name)
	require.NoError(t, err)

	b, err := fs.ReadFile(fsys, "out/d/a.txt")
	require.NoError(t, err)
	assert.Equal(t, "artifact\n", string(b))
	for _, link := range []string{"out/abs", "out/rel", "out/root", "out/hostdir"} {
		fi, err := fs.Lstat(fsys, link)
		require.NoError(t, err, link)
		assert.Equal(t, fs.ModeSymlink, fi.Mode().Type(), "%s is reported as a link", link)
		_, err = fs.ReadFile(fsys, link)
		assert.Error(t, err, "%s is not followed", link)
	}
	target, err := fs.ReadLink(fsys, "out/abs")
	require.NoError(t, err)
	assert.Equal(t, secret, target, "the target is given verbatim")
	// A link in the middle of a path resolves inside the container's root.
	_, err = fs.ReadFile(fsys, "out/hostdir/host-secret")
	assert.ErrorIs(t, err, fs.ErrNotExist, "nothing of the host is read through a link")
	b, err = fs.ReadFile(fsys, "out/root/out/d/a.txt")
	require.NoError(t, err)
	assert.Equal(t, "artifact\n", string(b), "/ is the container's root")
	var walked []string
	require.NoError(t, fs.WalkDir(fsys, "out", func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		walked = append(walked, p)
		return nil
	}))
	assert.Equal(t, []string{"out", "out/abs", "out/d", "out/d/a.txt", "out/hostdir", "out/rel", "out/root"}, walked, "a walk never enters a link")
}

func testFailTimeoutCancel(t *testing.T, rt *lxdrt.Runtime) {
	name := run(t, rt, container.Config{}, lxdrt.CreateOptions{})
	out, st := sh(t, rt, name, "echo failing >&2; exit 1")
	assert.Equal(t, container.ExitStatus{Code: 1}, st)
	assert.Equal(t, "failing\n", out)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := rt.Exec(ctx, name, container.ExecOptions{Argv: []string{"/bin/sleep", "600"}})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 10*time.Second, "a timeout returns at once")

	ctx, cancel = context.WithCancel(context.Background())
	var live strings.Builder
	w := &notify{w: &live, first: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := rt.Exec(ctx, name, container.ExecOptions{Argv: []string{"/bin/sh", "-c", "echo started; exec sleep 600"}, Stdout: w})
		done <- err
	}()
	select {
	case <-w.first: // output streams live, before the command ends
	case <-time.After(30 * time.Second):
		t.Fatal("no live output")
	}
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Exec did not return after cancel")
	}
	require.NoError(t, rt.Stop(context.Background(), name), "the caller stops the container")
	st2, err := rt.State(context.Background(), name)
	require.NoError(t, err)
	assert.Equal(t, container.StateStopped, st2)
}

type notify struct {
	w     io.Writer
	first chan struct{}
	once  bool
}

func (n *notify) Write(p []byte) (int, error) {
	if !n.once {
		n.once = true
		close(n.first)
	}
	return n.w.Write(p)
}

func testRefusals(t *testing.T, rt *lxdrt.Runtime) {
	ctx := context.Background()
	img := busybox(t)
	for _, cfg := range []container.Config{
		{Raw: map[string]string{"lxc.cap.drop": "sys_time"}},
		{Mounts: []container.Mount{{Source: t.TempDir(), Target: "/src"}}},
		{Network: container.Network{Mode: container.NetworkHost}},
	} {
		cfg.Root.Image = img
		name := containertest.Name(t)
		err := rt.Create(ctx, name, cfg)
		var ue *lxdrt.UsageError
		require.ErrorAs(t, err, &ue)
		assert.Equal(t, 2, ue.ExitCode())
		assert.ErrorIs(t, err, container.ErrUnsupported)
		t.Log(err)
		st, err := rt.State(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, container.StateAbsent, st, "nothing made")
	}
}

func testConfig(t *testing.T, rt *lxdrt.Runtime, d *lxdenv.Daemon) {
	cfg := container.Config{
		Limits:     container.Limits{Memory: 256 << 20, CPUs: 1, Pids: 100},
		Raw:        map[string]string{"security.nesting": "true"},
		Mounts:     []container.Mount{{Type: container.MountTmpfs, Target: "/scratch", Size: 16 << 20}},
		Privileged: true,
		Hostname:   "myhost",
	}
	name := run(t, rt, cfg, lxdrt.CreateOptions{Tags: map[string]string{"job": "test", "set": "demo"}})
	show := d.MustLxc(t, "config", "show", lxdrt.InstanceName(name))
	for _, want := range []string{"limits.memory: 268435456B", `limits.cpu: "1"`, `limits.processes: "100"`,
		`security.privileged: "true"`, `security.nesting: "true"`, "user.stint.job: test", "user.stint.set: demo"} {
		assert.Contains(t, show, want)
	}
	out, st := sh(t, rt, name, "hostname; grep ' /scratch ' /proc/mounts; cat /proc/net/dev | grep -c :")
	assert.True(t, st.Success(), out)
	assert.True(t, strings.HasPrefix(out, "myhost\n"), out)
	assert.Contains(t, out, "tmpfs /scratch tmpfs")
	assert.True(t, strings.HasSuffix(out, "1\n"), "network none: loopback only: %s", out)
}

func testGC(t *testing.T, rt *lxdrt.Runtime, d *lxdenv.Daemon) {
	ctx := context.Background()
	host, _ := os.Hostname()
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	deadPid := strconv.Itoa(dead.Process.Pid)
	crashed := run(t, rt, container.Config{}, lxdrt.CreateOptions{Tags: map[string]string{lxdrt.TagHost: host, lxdrt.TagPid: deadPid}})
	alive := run(t, rt, container.Config{}, lxdrt.CreateOptions{Tags: map[string]string{lxdrt.TagHost: host, lxdrt.TagPid: strconv.Itoa(os.Getpid())}})
	other := runtime(t, connectAgain(t, d), lxdrt.Options{Owner: "someone-else"})
	foreign := run(t, other, container.Config{}, lxdrt.CreateOptions{Tags: map[string]string{lxdrt.TagHost: host, lxdrt.TagPid: deadPid}})
	untagged := "untagged-" + strconv.Itoa(os.Getpid())
	d.MustLxc(t, "init", busybox(t).Fingerprint, untagged)
	t.Cleanup(func() { _, _ = d.Lxc(context.Background(), "delete", "-f", untagged) })

	gone, err := rt.GC(ctx, func(i lxdrt.Instance) bool { return !lxdrt.Orphaned(i) })
	require.NoError(t, err)
	assert.Equal(t, []string{crashed}, gone)
	list := d.MustLxc(t, "list", "-c", "n", "-f", "csv")
	assert.NotContains(t, list, lxdrt.InstanceName(crashed))
	for _, n := range []string{lxdrt.InstanceName(alive), lxdrt.InstanceName(foreign), untagged} {
		assert.Contains(t, list, n, "gc kept %s", n)
	}
	// Nobody's name is a way in: the untagged instance is refused.
	err = rt.Destroy(ctx, untagged)
	assert.True(t, errors.Is(err, lxdrt.ErrNotOwned), "%v", err)
}

// testInitAndPorts: a long-lived container's command runs as PID 1 with
// its env, the image's own init boots, and a port reaches a server inside.
func testInitAndPorts(t *testing.T, rt *lxdrt.Runtime) {
	cmd := run(t, rt, container.Config{Init: container.Init{Kind: container.InitCommand,
		Command: []string{"/bin/sh", "-c", `echo "$GREETING" > /tmp/hello; exec sleep 1000`}, Env: []string{"GREETING=hi there"}}}, lxdrt.CreateOptions{})
	require.Eventually(t, func() bool {
		out, st := sh(t, rt, cmd, "cat /tmp/hello")
		return st.Success() && out == "hi there\n"
	}, 20*time.Second, 200*time.Millisecond)
	out, _ := sh(t, rt, cmd, "cat /proc/1/cmdline | tr '\\0' ' '")
	assert.Equal(t, "sleep 1000 ", out)
	insts, err := rt.Instances(context.Background())
	require.NoError(t, err)
	for _, i := range insts {
		if i.Name == cmd {
			assert.False(t, i.Ephemeral, "a long-lived container survives its member's reboot")
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	boot := run(t, rt, container.Config{Init: container.Init{Kind: container.InitBoot}},
		lxdrt.CreateOptions{Ports: []lxdrt.Port{{Listen: "tcp:" + addr, Connect: "tcp:127.0.0.1:8080"}}})
	out, _ = sh(t, rt, boot, "cat /proc/1/comm")
	assert.Equal(t, "init\n", out)
	out, st := sh(t, rt, boot, "mkdir -p /www && echo served > /www/index.html && httpd -p 127.0.0.1:8080 -h /www")
	require.True(t, st.Success(), out)
	var body []byte
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/index.html")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == 200
	}, 20*time.Second, 200*time.Millisecond)
	assert.Equal(t, "served\n", string(body))
}
