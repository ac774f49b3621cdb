package lxcrt_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/lxcrt"
)

func TestMain(m *testing.M) {
	if lxcrt.IsHelper(os.Args) {
		lxcrt.HelperMain()
	}
	os.Exit(m.Run())
}

// fixture is a runtime over a fresh LXC path with a busybox rootfs.
type fixture struct {
	rt     *lxcrt.Runtime
	rootfs string
	idmap  *container.IDMap
	shift  *idmap.Map
}

func newFixture(t *testing.T, privileged bool) *fixture {
	t.Helper()
	testenv.RequiresLXC(t)
	testenv.RequiresTool(t, "busybox")
	dir := t.TempDir()
	// The container's root (an unprivileged host uid) must reach the rootfs.
	testenv.Reachable(t, dir)
	rt, err := lxcrt.New(filepath.Join(dir, "containers"))
	require.NoError(t, err)
	f := &fixture{rt: rt, rootfs: filepath.Join(dir, "rootfs")}
	var m *idmap.Map
	if !privileged {
		mm, err := idmap.Ensure("/etc/subuid", "/etc/subgid")
		require.NoError(t, err)
		m = &mm
		f.shift = m
		f.idmap = &container.IDMap{HostUID: mm.HostUID, HostGID: mm.HostGID, Size: mm.Size}
	}
	BusyboxRootfs(t, f.rootfs, m)
	t.Cleanup(func() {
		names, _ := rt.List(context.Background())
		for _, n := range names {
			_ = rt.Destroy(context.Background(), n)
		}
	})
	return f
}

// BusyboxRootfs builds a minimal root filesystem from the host's static
// busybox, owned by the map's root when m is set.
func BusyboxRootfs(t *testing.T, dir string, m *idmap.Map) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	for _, d := range []string{"bin", "etc", "dev", "proc", "sys", "tmp", "root", "home/app", "data"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	require.NoError(t, os.Chmod(filepath.Join(dir, "tmp"), 0o1777))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755))
	for _, applet := range []string{"sh", "cat", "echo", "id", "ls", "sleep", "env", "pwd", "touch", "kill", "grep"} {
		require.NoError(t, os.Symlink("busybox", filepath.Join(dir, "bin", applet)))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc/passwd"),
		[]byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\napp:x:1000:\n"), 0o644))
	if m == nil {
		return
	}
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		uid, _ := m.ShiftUID(st.Uid)
		gid, _ := m.ShiftGID(st.Gid)
		if strings.HasSuffix(p, "home/app") {
			uid, gid = m.HostUID+1000, m.HostGID+1000
		}
		return os.Lchown(p, int(uid), int(gid))
	}))
}

func (f *fixture) start(t *testing.T, name string, cfg container.Config) {
	t.Helper()
	cfg.Root.Dir = f.rootfs
	cfg.IDMap = f.idmap
	cfg.Privileged = f.idmap == nil
	ctx := context.Background()
	require.NoError(t, f.rt.Create(ctx, name, cfg))
	require.NoError(t, f.rt.Start(ctx, name))
	st, err := f.rt.State(ctx, name)
	require.NoError(t, err)
	require.Equal(t, container.StateRunning, st)
}

func (f *fixture) sh(t *testing.T, name, script string, env ...string) (string, container.ExitStatus) {
	t.Helper()
	var out bytes.Buffer
	st, err := f.rt.Exec(context.Background(), name, container.ExecOptions{
		Argv: []string{"/bin/sh", "-c", script}, Env: env, Stdout: &out, Stderr: &out,
	})
	require.NoError(t, err)
	return out.String(), st
}

func TestLifecycleUnprivileged(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	f.start(t, "life", container.Config{})

	out, st := f.sh(t, "life", "cat /proc/self/uid_map")
	require.True(t, st.Success(), out)
	fields := strings.Fields(out)
	require.Len(t, fields, 3)
	assert.Equal(t, []string{"0", fmt.Sprint(f.idmap.HostUID), fmt.Sprint(f.idmap.Size)}, fields, "uid_map is not the stint range")

	// Exit codes, signals, environment, user, cwd.
	_, st = f.sh(t, "life", "exit 7")
	assert.Equal(t, container.ExitStatus{Code: 7}, st)
	_, st = f.sh(t, "life", "kill -TERM $$")
	assert.Equal(t, syscall.SIGTERM, st.Signal)
	assert.False(t, st.Success())

	os.Setenv("STINT_CANARY", "leak")
	t.Cleanup(func() { os.Unsetenv("STINT_CANARY") })
	var env bytes.Buffer
	st, err := f.rt.Exec(ctx, "life", container.ExecOptions{Argv: []string{"/bin/env"}, Env: []string{"A=1", "PATH=/bin"}, Stdout: &env})
	require.NoError(t, err)
	require.True(t, st.Success())
	// In any order: it is passed through liblxc's attach, which puts PATH first.
	assert.ElementsMatch(t, []string{"A=1", "PATH=/bin"}, strings.Fields(env.String()), "the environment is not exactly the one asked for")
	env.Reset()
	st, err = f.rt.Exec(ctx, "life", container.ExecOptions{Argv: []string{"/bin/env"}, Env: []string{"container=mine", "B=2"}, Stdout: &env})
	require.NoError(t, err)
	require.True(t, st.Success())
	assert.ElementsMatch(t, []string{"container=mine", "B=2"}, strings.Fields(env.String()), "no PATH asked for, none given")

	var buf bytes.Buffer
	st, err = f.rt.Exec(ctx, "life", container.ExecOptions{
		Argv: []string{"/bin/sh", "-c", "id -u; id -g; pwd"}, UID: 1000, GID: 1000, Cwd: "/home/app", Stdout: &buf,
	})
	require.NoError(t, err)
	require.True(t, st.Success())
	assert.Equal(t, "1000\n1000\n/home/app\n", buf.String())

	// Stdin reaches the command.
	buf.Reset()
	st, err = f.rt.Exec(ctx, "life", container.ExecOptions{
		Argv: []string{"/bin/cat"}, Stdin: strings.NewReader("hello\n"), Stdout: &buf,
	})
	require.NoError(t, err)
	require.True(t, st.Success())
	assert.Equal(t, "hello\n", buf.String())

	require.NoError(t, f.rt.Stop(ctx, "life"))
	s, err := f.rt.State(ctx, "life")
	require.NoError(t, err)
	assert.Equal(t, container.StateStopped, s)
	require.NoError(t, f.rt.Destroy(ctx, "life"))
	names, err := f.rt.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, names)
}

func TestMountsAndLimits(t *testing.T) {
	f := newFixture(t, false)
	src := t.TempDir()
	require.NoError(t, os.Chmod(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "in.txt"), []byte("from host\n"), 0o644))
	f.start(t, "mounts", container.Config{
		Mounts: []container.Mount{
			{Type: "bind", Source: src, Target: "/src", Readonly: true},
			{Type: "tmpfs", Target: "/scratch", Size: 1 << 20},
		},
		Limits: container.Limits{Pids: 64},
	})
	out, st := f.sh(t, "mounts", "cat /src/in.txt")
	require.True(t, st.Success(), out)
	assert.Equal(t, "from host\n", out)
	out, st = f.sh(t, "mounts", "touch /src/new")
	assert.False(t, st.Success(), "a read-only bind mount was writable: %s", out)
	assert.NoFileExists(t, filepath.Join(src, "new"))
	out, st = f.sh(t, "mounts", "grep ' /scratch ' /proc/mounts")
	require.True(t, st.Success(), out)
	assert.Contains(t, out, "tmpfs")
	assert.Contains(t, out, "size=1024k")
}

func TestTimeoutByStop(t *testing.T) {
	f := newFixture(t, false)
	f.start(t, "slow", container.Config{})
	done := make(chan container.ExitStatus, 1)
	go func() {
		st, err := f.rt.Exec(context.Background(), "slow", container.ExecOptions{Argv: []string{"/bin/sleep", "600"}})
		assert.NoError(t, err)
		done <- st
	}()
	time.Sleep(500 * time.Millisecond)
	// Stopping on a handle of its own is not stalled by the running Exec.
	require.NoError(t, f.rt.Stop(context.Background(), "slow"))
	select {
	case st := <-done:
		assert.Equal(t, syscall.SIGKILL, st.Signal)
	case <-time.After(20 * time.Second):
		t.Fatal("exec did not return after the container was stopped")
	}
}

// TestParallelNoLeaks starts containers concurrently and checks that no file
// descriptor leaks and nothing hangs.
func TestParallelNoLeaks(t *testing.T) {
	f := newFixture(t, false)
	// Each container its own rootfs, as each job has its own clone.
	for i := range 4 {
		BusyboxRootfs(t, filepath.Join(filepath.Dir(f.rootfs), fmt.Sprintf("par%d", i)), f.shift)
	}
	before := fdCount(t)
	deadline := time.AfterFunc(3*time.Minute, func() { panic("parallel lifecycle hung") })
	defer deadline.Stop()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("par%d", i)
			ctx := context.Background()
			rootfs := filepath.Join(filepath.Dir(f.rootfs), name)
			cfg := container.Config{Root: container.Root{Dir: rootfs}, IDMap: f.idmap}
			if !assert.NoError(t, f.rt.Create(ctx, name, cfg)) {
				return
			}
			defer func() { assert.NoError(t, f.rt.Destroy(ctx, name)) }()
			if !assert.NoError(t, f.rt.Start(ctx, name)) {
				return
			}
			for j := range 3 {
				var out bytes.Buffer
				st, err := f.rt.Exec(ctx, name, container.ExecOptions{Argv: []string{"/bin/echo", fmt.Sprint(j)}, Stdout: &out})
				assert.NoError(t, err)
				assert.True(t, st.Success())
				assert.Equal(t, fmt.Sprintf("%d\n", j), out.String())
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, before, fdCount(t), "file descriptors leaked")
}

func fdCount(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}
