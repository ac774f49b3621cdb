package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/lxdenv"
)

// faultProxy serves d's API on a unix socket of its own, passing every
// request through, except that the first request fault picks is answered
// by fault itself (given the pid of the client that sent it): a remote
// that fails, or a stint that dies, at that exact step, with nothing in
// stint's binary made for the test.
type faultProxy struct {
	Socket string
	mu     sync.Mutex
	fault  func(w http.ResponseWriter, r *http.Request, body []byte, pid int) bool
}

type peerKey struct{}

func newFaultProxy(t *testing.T, d *lxdenv.Daemon) *faultProxy {
	t.Helper()
	p := &faultProxy{Socket: filepath.Join(t.TempDir(), "proxy.socket")}
	l, err := net.Listen("unix", p.Socket)
	require.NoError(t, err)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(&url.URL{Scheme: "http", Host: "lxd"}) },
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
		}},
	}
	srv := &http.Server{
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerPid(c))
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			p.mu.Lock()
			f := p.fault
			if f != nil && f(w, r, body, r.Context().Value(peerKey{}).(int)) {
				p.fault = nil
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			rp.ServeHTTP(w, r)
		}),
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// failOn makes the proxy answer the first state change action of
// instance inst with what does.
func (p *faultProxy) failOn(inst, action string, does func(w http.ResponseWriter, pid int)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = func(w http.ResponseWriter, r *http.Request, body []byte, pid int) bool {
		var put struct{ Action string }
		if r.Method != http.MethodPut || r.URL.Path != "/1.0/instances/"+inst+"/state" ||
			json.Unmarshal(body, &put) != nil || put.Action != action {
			return false
		}
		does(w, pid)
		return true
	}
}

// refuse answers as LXD does when an operation fails.
func refuse(w http.ResponseWriter, _ int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(`{"type":"error","error":"refused by the test's proxy","error_code":500}`))
}

// kill9 kills the client (stint) with SIGKILL before its request reaches
// the remote.
func kill9(w http.ResponseWriter, pid int) {
	if pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	refuse(w, pid)
}

// peerPid is the pid of the process at the other end of unix socket c.
func peerPid(c net.Conn) int {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0
	}
	pid := 0
	_ = raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	return pid
}

// TestRemoteRestartOwed: a restart of a remote long-lived container that
// does not complete is tracked on the remote, as locally. The remote
// refuses the stop that follows an env change (apply fails, exit 3), then
// stint is killed with SIGKILL at the same step: each time PID 1 still runs
// with the old env, the next plan says "recorded, needs a restart" (exit
// 4), and apply (or `stint --remote l restart`, or watch) restarts it
// with the new env, after which nothing is pending. A refused start leaves the instance
// stopped: the plan starts it, with the new env. A limit changed with the
// env is not owed: LXD applies it to the running instance at once.
func TestRemoteRestartOwed(t *testing.T) {
	x := newRestartFixture(t)
	x.writeSet("v1")
	out, code := x.rl("apply", x.spec)
	require.Equal(t, 0, code, out)
	x.web = instanceOf(t, x.d, "ro-web-")
	require.NotEmpty(t, x.web)

	// The remote refuses the stop: apply fails, the restart is owed, for
	// the env only (LXD applied the new limit to the running instance).
	x.memory = "128MiB"
	x.writeSet("v2")
	x.px.failOn(x.web, "stop", refuse)
	out, code = x.rp("apply", x.spec)
	assert.Equal(t, ExitHost, code, out)
	assert.Contains(t, out, "refused by the test's proxy")
	out = x.owed("v2")
	assert.NotContains(t, out, "limits changed", "limits are live on a remote")
	assert.Equal(t, "134217728", memoryLimit(t, x.web), "the limit is live")
	// A second change while one is owed: still owed, from the first spec.
	x.writeSet("v3")
	out, code = x.rl("plan", x.spec)
	assert.Equal(t, ExitChanges, code, out)
	assert.Contains(t, out, "env changed: ~GREETING (needs a restart)")
	out, code = x.rl("apply", x.spec)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "ok  web restarted")
	x.done("v3")

	// stint killed with SIGKILL between the update and the stop;
	// `stint restart` by name pays what is owed.
	x.writeSet("v4")
	x.px.failOn(x.web, "stop", kill9)
	out, code = x.rp("apply", x.spec)
	assert.Equal(t, -1, code, "killed: %s", out)
	x.owed("v4")
	out, code = x.rl("restart", "web")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "ok  ro.web restarted")
	x.done("v4")
	out, code = x.rl("restart", "nosuch")
	assert.Equal(t, ExitUsage, code, out)

	// Refused again: watch pays what is owed.
	x.writeSet("v5")
	x.px.failOn(x.web, "stop", refuse)
	out, code = x.rp("apply", x.spec)
	assert.Equal(t, ExitHost, code, out)
	x.owed("v5")
	c := x.f.startUntil(t, "ok  web restarted", "--remote", "l", "watch", "--resync", "1s", x.spec)
	require.NoError(t, c.Process.Signal(syscall.SIGTERM))
	require.NoError(t, c.Wait())
	x.done("v5")

	// The remote refuses the start after the stop: the instance is
	// stopped, the plan starts it, with the new env.
	x.writeSet("v6")
	x.px.failOn(x.web, "start", refuse)
	out, code = x.rp("apply", x.spec)
	assert.Equal(t, ExitHost, code, out)
	assert.Equal(t, "STOPPED", strings.TrimSpace(x.d.MustLxc(t, "list", x.web, "-c", "s", "-f", "csv")))
	out, code = x.rl("plan", x.spec)
	assert.Equal(t, ExitChanges, code, out)
	assert.Contains(t, out, ">   web (start)")
	out, code = x.rl("apply", x.spec)
	require.Equal(t, 0, code, out)
	x.done("v6")

	out, code = x.rl("down", x.spec)
	require.Equal(t, 0, code, out)
	assert.Empty(t, lxcList(t, x.d))
}

// restartFixture is a set "ro" of one container, web, on a private LXD
// reached as remote l directly and as remote p through a faultProxy.
type restartFixture struct {
	t      *testing.T
	f      *cliFixture
	d      *lxdenv.Daemon
	px     *faultProxy
	spec   string
	memory string // web's memory limit ("": none)
	web    string // web's instance
}

func newRestartFixture(t *testing.T) *restartFixture {
	f := newCLI(t)
	d := lxdenv.StartDaemon(t)
	x := &restartFixture{t: t, f: f, d: d, px: newFaultProxy(t, d), spec: filepath.Join(f.dir, "stint.toml")}
	out, code := f.run(t, "remote", "add", "l", "unix://"+d.Socket)
	require.Equal(t, 0, code, out)
	out, code = f.run(t, "remote", "add", "p", "unix://"+x.px.Socket)
	require.Equal(t, 0, code, out)
	return x
}

// writeSet writes the set with web's GREETING.
func (x *restartFixture) writeSet(greeting string) {
	body := "name = \"ro\"\n" + specHead + `
[container.web]
image = "busybox"
command = ["sleep", "3600"]
env = { GREETING = "` + greeting + `" }
`
	if x.memory != "" {
		body += `limits = { memory = "` + x.memory + `" }` + "\n"
	}
	require.NoError(x.t, os.WriteFile(x.spec, []byte(body), 0o644))
}

// rl and rp run stint with --remote l and --remote p.
func (x *restartFixture) rl(args ...string) (string, int) {
	return x.f.run(x.t, append([]string{"--remote", "l"}, args...)...)
}

func (x *restartFixture) rp(args ...string) (string, int) {
	return x.f.run(x.t, append([]string{"--remote", "p"}, args...)...)
}

func (x *restartFixture) pid1Env() string {
	return x.d.MustLxc(x.t, "exec", x.web, "--", "sh", "-c", "tr '\\0' '\\n' < /proc/1/environ")
}

func (x *restartFixture) startedTag() string {
	return strings.TrimSpace(x.d.MustLxc(x.t, "config", "get", x.web, "user.stint.started"))
}

// owed checks that web runs with another GREETING than the one recorded
// (greeting), that the remote records the restart owed, and that plan
// shows it; it returns the plan's output.
func (x *restartFixture) owed(greeting string) string {
	t := x.t
	t.Helper()
	assert.Equal(t, "RUNNING", strings.TrimSpace(x.d.MustLxc(t, "list", x.web, "-c", "s", "-f", "csv")))
	assert.NotContains(t, x.pid1Env(), "GREETING="+greeting, "PID 1 still has the old env")
	assert.Equal(t, greeting, strings.TrimSpace(x.d.MustLxc(t, "config", "get", x.web, "environment.GREETING")))
	assert.NotEmpty(t, x.startedTag(), "the restart owed is recorded on the remote")
	out, code := x.rl("plan", x.spec)
	assert.Equal(t, ExitChanges, code, out)
	assert.Contains(t, out, "web (restart)")
	assert.Contains(t, out, "env changed: ~GREETING (recorded, needs a restart)")
	return out
}

// done checks that the same instance's PID 1 runs with greeting and that
// nothing is owed or pending.
func (x *restartFixture) done(greeting string) {
	t := x.t
	t.Helper()
	assert.Equal(t, x.web, instanceOf(t, x.d, "ro-web-"), "the same instance")
	assert.Contains(t, x.pid1Env(), "GREETING="+greeting, "PID 1 restarted with the new env")
	assert.Empty(t, x.startedTag(), "nothing owed after the start")
	out, code := x.rl("plan", x.spec)
	assert.Equal(t, 0, code, "nothing pending: %s", out)
}

// memoryLimit is the memory limit of the cgroup of running instance inst
// (the daemon is on this host), as the kernel has it.
func memoryLimit(t *testing.T, inst string) string {
	t.Helper()
	for _, pat := range []string{"/sys/fs/cgroup/memory/lxc.payload.%s/memory.limit_in_bytes", "/sys/fs/cgroup/memory/*/lxc.payload.%s/memory.limit_in_bytes",
		"/sys/fs/cgroup/lxc.payload.%s/memory.max", "/sys/fs/cgroup/*/lxc.payload.%s/memory.max"} {
		if m, _ := filepath.Glob(fmt.Sprintf(pat, inst)); len(m) == 1 {
			b, err := os.ReadFile(m[0])
			require.NoError(t, err)
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("no memory cgroup of %s", inst)
	return ""
}
