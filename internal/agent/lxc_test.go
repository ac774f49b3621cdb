package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/internal/testenv"
)

// buildAgent builds cmd/stint-agent, static, into dir.
func buildAgent(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "stint-agent")
	gobin, err := exec.LookPath("go")
	if err != nil {
		testenv.Unavailable(t, "the test builds stint-agent and needs go on PATH")
	}
	cmd := exec.Command(gobin, "build", "-o", bin, "github.com/stintdev/stint/cmd/stint-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build stint-agent: %s", out)
	return bin
}

// busyboxRootfs makes a minimal root from the host's static busybox, owned
// by the map's root (and uid 1000's home by its uid).
func busyboxRootfs(t *testing.T, dir string, m idmap.Map) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	for _, d := range []string{"bin", "etc", "dev", "proc", "sys", "tmp", "root", "home/app"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755))
	for _, applet := range []string{"sh", "cat", "echo", "id", "ls", "sleep", "env", "pwd", "kill", "true", "head"} {
		require.NoError(t, os.Symlink("busybox", filepath.Join(dir, "bin", applet)))
	}
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		uid, gid := m.HostUID, m.HostGID
		if strings.HasSuffix(p, "home/app") {
			uid, gid = m.HostUID+1000, m.HostGID+1000
		}
		return os.Lchown(p, int(uid), int(gid))
	}))
}

// lxcAgent is a container whose PID 1 is the agent, started with
// `lxc-start -F` (liblxc's start, not daemonized, so the container's init
// inherits the pipes), as the runtime's fast path would.
type lxcAgent struct {
	c     *Client
	start *exec.Cmd
	null  *os.File
	// out is a file, not a buffer fed by a goroutine: a command's output is
	// in it by the time its exit is reported.
	out    *os.File
	ready  time.Duration // lxc-start until the agent's Ready
	lxcLog string
}

func startLXCAgent(t *testing.T) *lxcAgent {
	t.Helper()
	testenv.RequiresLXC(t)
	testenv.RequiresTool(t, "busybox")
	m, err := idmap.Ensure("/etc/subuid", "/etc/subgid")
	require.NoError(t, err)
	dir := t.TempDir()
	bin := buildAgent(t, dir)
	lxcpath, rootfs := filepath.Join(dir, "lxc"), filepath.Join(dir, "rootfs")
	busyboxRootfs(t, rootfs, m)
	name := fmt.Sprintf("stint-agent-test-%d", os.Getpid())
	require.NoError(t, os.MkdirAll(filepath.Join(lxcpath, name), 0o750))
	// The container's root (an unprivileged host uid) must reach the rootfs.
	testenv.Reachable(t, lxcpath)
	out, err := os.Create(filepath.Join(dir, "out"))
	require.NoError(t, err)
	a := &lxcAgent{out: out, lxcLog: filepath.Join(lxcpath, name, "lxc.log")}
	// The lean job configuration: no ttys, no console, no init.lxc, no
	// busybox; seccomp and the capability drop stay.
	conf := []string{
		"lxc.uts.name = " + name,
		"lxc.rootfs.path = dir:" + rootfs,
		"lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed",
		"lxc.autodev = 1",
		"lxc.pty.max = 0",
		"lxc.tty.max = 0",
		"lxc.console.path = none",
		"lxc.cap.drop = sys_module mac_admin mac_override sys_time",
		"lxc.apparmor.profile = unconfined",
		fmt.Sprintf("lxc.idmap = u 0 %d %d", m.HostUID, m.Size),
		fmt.Sprintf("lxc.idmap = g 0 %d %d", m.HostGID, m.Size),
		"lxc.mount.entry = " + bin + " .stint/agent none bind,ro,create=file 0 0",
		"lxc.init.cmd = /.stint/agent",
		"lxc.net.0.type = empty",
		"lxc.log.file = " + a.lxcLog,
		"lxc.log.level = WARN",
	}
	if _, err := os.Stat("/usr/share/lxc/config/common.seccomp"); err == nil {
		conf = append(conf, "lxc.seccomp.profile = /usr/share/lxc/config/common.seccomp")
	}
	require.NoError(t, os.WriteFile(filepath.Join(lxcpath, name, "config"), []byte(strings.Join(conf, "\n")+"\n"), 0o640))

	rt, ag, err := Socketpair()
	require.NoError(t, err)
	a.null, err = os.Open(os.DevNull)
	require.NoError(t, err)
	t.Cleanup(func() { a.null.Close() })
	startLog, err := os.Create(filepath.Join(dir, "lxc-start.out"))
	require.NoError(t, err)
	defer startLog.Close()
	a.start = exec.Command("lxc-start", "-F", "-P", lxcpath, "-n", name)
	a.start.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	a.start.Stdout, a.start.Stderr = startLog, startLog
	a.start.ExtraFiles = []*os.File{ag} // fd 3, in the container too
	a.start.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	t0 := time.Now()
	require.NoError(t, a.start.Start())
	ag.Close()
	a.c = NewClient(rt)
	t.Cleanup(func() {
		if a.start.ProcessState == nil {
			_ = a.c.Exit()
		}
		done := make(chan struct{})
		go func() { _ = a.start.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = exec.Command("lxc-stop", "-k", "-P", lxcpath, "-n", name).Run()
			<-done
			t.Errorf("the container did not stop within 20s of the agent's Exit")
		}
	})
	pid, err := a.c.Ready()
	a.ready = time.Since(t0)
	if err != nil {
		log, _ := os.ReadFile(a.lxcLog)
		out, _ := os.ReadFile(startLog.Name())
		t.Fatalf("agent in LXC: %v\nlxc-start: %s\nlxc log: %s", err, out, log)
	}
	require.Equal(t, 1, pid, "the agent is the container's PID 1")
	return a
}

// output returns what was written so far, and forgets it.
func (a *lxcAgent) output(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(a.out.Name())
	require.NoError(t, err)
	require.NoError(t, a.out.Truncate(0))
	_, err = a.out.Seek(0, 0)
	require.NoError(t, err)
	return string(b)
}

func TestAgentAsLXCInit(t *testing.T) {
	a := startLXCAgent(t)
	t.Logf("lxc-start -F until the agent's Ready: %v", a.ready)
	run := func(cmd Command) syscall.WaitStatus {
		t.Helper()
		t0 := time.Now()
		ws, err := a.c.Run(cmd, a.null, a.out, a.out)
		require.NoError(t, err)
		t.Logf("%q: %v", cmd.Argv, time.Since(t0))
		return ws
	}
	sh := func(script string) Command {
		return Command{Argv: []string{"/bin/sh", "-c", script}, Env: []string{"PATH=/bin"}}
	}
	assert.Equal(t, 0, run(sh("true")).ExitStatus())
	assert.Equal(t, 7, run(sh("exit 7")).ExitStatus())
	ws := run(sh("kill -KILL $$"))
	assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "%v", ws)

	a.output(t)
	run(Command{Argv: []string{"/bin/env"}, Env: []string{"SECRET=s", "PATH=/bin"}})
	run(sh("id -u; id -g; cat /proc/self/uid_map | head -n 1"))
	run(Command{Argv: []string{"/bin/sh", "-c", "id -u; id -g; pwd"}, Env: []string{"PATH=/bin"}, UID: 1000, GID: 1000, Cwd: "/home/app"})
	// What a command inherits, seen from outside it: a sleeper's descriptors.
	run(sh("sleep 100 & echo $! >/tmp/sleeper"))
	run(sh("ls /proc/$(cat /tmp/sleeper)/fd"))
	m, err := idmap.Load("/etc/subuid", "/etc/subgid")
	require.NoError(t, err)
	want := fmt.Sprintf("SECRET=s\nPATH=/bin\n0\n0\n0 %d %d\n1000\n1000\n/home/app\n0\n1\n2\n", m.HostUID, m.Size)
	got := strings.Join(strings.Fields(a.output(t)), " ")
	assert.Equal(t, strings.Join(strings.Fields(want), " "), got,
		"exact env (no container=lxc, nothing of the agent's), root of the id map, uid 1000 in its home, only stdio")

	// Processes left behind (the sleeper, one more) are killed by a reap,
	// so artifacts can be read with nothing running.
	run(sh("sleep 100 >/dev/null 2>&1 &"))
	n, err := a.c.Reap()
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	// Exit stops the container: lxc-start returns.
	t0 := time.Now()
	run(sh("sleep 100 >/dev/null 2>&1 &"))
	require.NoError(t, a.c.Exit())
	require.NoError(t, a.start.Wait(), "lxc-start")
	t.Logf("exit until lxc-start returned: %v", time.Since(t0))
}
