package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/lxdenv"
)

// remoteSet is a spec set of two long-lived containers for a remote: one
// running its command with env, limits and a read-only bind, one booting
// the busybox image's init, kept stopped.
const remoteSet = `
[container.web]
image = "busybox"
command = ["sleep", "3600"]
env = { GREETING = "%s" }
limits = { memory = "256MiB" }

[[container.web.mount]]
source = "conf"
target = "/conf"
readonly = true

[container.box]
image = "busybox"
state = "stopped"
`

// instanceOf is the remote instance whose name starts with prefix ("" if
// none).
func instanceOf(t *testing.T, d *lxdenv.Daemon, prefix string) string {
	t.Helper()
	for _, n := range lxcList(t, d) {
		if strings.HasPrefix(n, prefix) {
			return n
		}
	}
	return ""
}

// TestRemoteLongLived: plan, apply, watch and down with --remote on a
// private LXD, through the binary. The containers become persistent
// instances tagged with the set; a second plan sees no change; ps with the
// remote lists them and local ps does not; a half-made one (a create cut
// short) is made again; a container stopped by hand is
// started again (its read-only bind made read-only again), an env change
// restarts it in place, a container deleted by hand is made again by watch;
// down leaves no instance and nothing under --root.
func TestRemoteLongLived(t *testing.T) {
	f := newCLI(t)
	d := lxdenv.StartDaemon(t)
	out, code := f.run(t, "remote", "add", "l", "unix://"+d.Socket)
	require.Equal(t, 0, code, out)
	require.NoError(t, os.Mkdir(filepath.Join(f.dir, "conf"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "conf", "app.conf"), []byte("port 80\n"), 0o644))
	p := filepath.Join(f.dir, "stint.toml")
	writeSet := func(greeting string) {
		body := "name = \"rl\"\n" + specHead + strings.Replace(remoteSet, "%s", greeting, 1)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	writeSet("hello")
	rl := func(args ...string) (string, int) { return f.run(t, append([]string{"--remote", "l"}, args...)...) }

	out, code = rl("plan", p)
	assert.Equal(t, ExitChanges, code, out)
	assert.Contains(t, out, "+   web (create)")
	assert.Contains(t, out, "+   box (create)")
	assert.Empty(t, lxcList(t, d), "plan changes nothing")

	out, code = rl("apply", p)
	require.Equal(t, 0, code, out)
	web, box := instanceOf(t, d, "rl-web-"), instanceOf(t, d, "rl-box-")
	require.NotEmpty(t, web, "%v", lxcList(t, d))
	require.NotEmpty(t, box, "%v", lxcList(t, d))
	assert.Equal(t, "RUNNING", strings.TrimSpace(d.MustLxc(t, "list", web, "-c", "s", "-f", "csv")))
	assert.Equal(t, "STOPPED", strings.TrimSpace(d.MustLxc(t, "list", box, "-c", "s", "-f", "csv")))
	assert.Contains(t, d.MustLxc(t, "config", "show", web), "ephemeral: false", "persistent")
	assert.Equal(t, "rl", strings.TrimSpace(d.MustLxc(t, "config", "get", web, "user.stint.set")))
	assert.Equal(t, "hello", strings.TrimSpace(d.MustLxc(t, "exec", web, "--", "sh", "-c", "echo $GREETING")))
	assert.Equal(t, "port 80", strings.TrimSpace(d.MustLxc(t, "exec", web, "--", "cat", "/conf/app.conf")))

	out, code = rl("plan", p)
	assert.Equal(t, 0, code, "a second plan changes nothing: %s", out)
	assert.Contains(t, out, "No changes")

	// A create that a kill -9 cut short (its instance still tagged
	// "creating") is made again.
	d.MustLxc(t, "config", "set", box, "user.stint.phase", "creating")
	out, code = rl("plan", p)
	assert.Equal(t, ExitChanges, code, out)
	assert.Contains(t, out, "-/+ box (recreate)")
	out, code = rl("apply", p)
	require.Equal(t, 0, code, out)
	assert.Equal(t, "ready", strings.TrimSpace(d.MustLxc(t, "config", "get", box, "user.stint.phase")))
	assert.Equal(t, "STOPPED", strings.TrimSpace(d.MustLxc(t, "list", box, "-c", "s", "-f", "csv")))

	out, code = rl("ps")
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `(?m)^rl\.web\s+container\s+rl\s+web\s+running`, out)
	assert.Regexp(t, `(?m)^rl\.box\s+container\s+rl\s+box\s+stopped`, out)
	out, code = f.run(t, "ps")
	require.Equal(t, 0, code, out)
	assert.NotContains(t, out, "rl.web", "local ps lists no remote container")

	// Drift: stopped by hand, started again with its bind read-only.
	d.MustLxc(t, "stop", "--force", web)
	out, code = rl("plan", p)
	assert.Equal(t, ExitChanges, code, out)
	assert.Contains(t, out, ">   web (start)")
	out, code = rl("apply", p)
	require.Equal(t, 0, code, out)
	assert.Equal(t, "port 80", strings.TrimSpace(d.MustLxc(t, "exec", web, "--", "cat", "/conf/app.conf")))
	_, err := d.Lxc(t.Context(), "exec", web, "--", "touch", "/conf/new")
	assert.Error(t, err, "the bind is read-only after a restart")

	// An env change of a running container is a restart of the same
	// instance: its PID 1 then runs with the new env.
	writeSet("again")
	out, code = rl("plan", p)
	assert.Equal(t, ExitChanges, code, out)
	assert.Contains(t, out, "web (restart)")
	out, code = rl("apply", p)
	require.Equal(t, 0, code, out)
	assert.Equal(t, web, instanceOf(t, d, "rl-web-"), "changed in place")
	assert.Equal(t, "again", strings.TrimSpace(d.MustLxc(t, "config", "get", web, "environment.GREETING")))
	assert.Equal(t, "RUNNING", strings.TrimSpace(d.MustLxc(t, "list", web, "-c", "s", "-f", "csv")))
	assert.Contains(t, d.MustLxc(t, "exec", web, "--", "sh", "-c", "tr '\\0' '\\n' < /proc/1/environ"), "GREETING=again", "PID 1 restarted with the new env")
	out, code = rl("plan", p)
	assert.Equal(t, 0, code, "nothing pending after the restart: %s", out)

	// watch makes a container deleted by hand again, and leaves the
	// containers running when it stops.
	d.MustLxc(t, "delete", "--force", web)
	c := f.startUntil(t, "ok  web", "--remote", "l", "watch", "--resync", "1s", p)
	require.NoError(t, c.Process.Signal(syscall.SIGTERM))
	require.NoError(t, c.Wait())
	require.NotEmpty(t, instanceOf(t, d, "rl-web-"))
	assert.Equal(t, "RUNNING", strings.TrimSpace(d.MustLxc(t, "list", instanceOf(t, d, "rl-web-"), "-c", "s", "-f", "csv")))

	out, code = rl("down", p)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "ok  web deleted")
	assert.Empty(t, lxcList(t, d), "no instance left on the remote")
	assert.NotContains(t, d.MustLxc(t, "storage", "volume", "list", d.Pool, "-f", "csv"), "custom", "no volume left")
	out, code = rl("plan", p)
	assert.Equal(t, ExitChanges, code, out)
	for _, sub := range []string{"state", "reconcile", "logs"} {
		ents, _ := os.ReadDir(filepath.Join(f.root, sub))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		assert.Empty(t, names, "nothing of the set kept under --root/%s", sub)
	}
}

// TestRemotePorts: a long-lived container's published port on a remote is
// an LXD proxy device: apply makes the container's server answer on the
// remote host's address (here loopback: the daemon is on this host, its
// default profile a point-to-point NIC, so no bridge or address range is
// made), and down takes the listener away with the instance.
func TestRemotePorts(t *testing.T) {
	f := newCLI(t)
	d := lxdenv.StartDaemon(t)
	d.MustLxc(t, "profile", "device", "add", "default", "eth0", "nic", "nictype=p2p", "name=eth0")
	out, code := f.run(t, "remote", "add", "l", "unix://"+d.Socket)
	require.Equal(t, 0, code, out)
	require.NoError(t, os.Mkdir(filepath.Join(f.dir, "www"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "www", "index.html"), []byte("hello over the proxy\n"), 0o644))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	p := filepath.Join(f.dir, "stint.toml")
	require.NoError(t, os.WriteFile(p, []byte("name = \"pt\"\n"+specHead+`
[container.www]
image = "busybox"
network = "bridge"
ports = ["127.0.0.1:`+port+`:8080"]
command = ["httpd", "-f", "-p", "8080", "-h", "/www"]

[[container.www.mount]]
source = "www"
target = "/www"
readonly = true
`), 0o644))
	get := func() (string, error) {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET /index.html HTTP/1.0\r\n\r\n")); err != nil {
			return "", err
		}
		b, err := io.ReadAll(c)
		return string(b), err
	}
	out, code = f.run(t, "--remote", "l", "apply", p)
	require.Equal(t, 0, code, out)
	assert.Contains(t, d.MustLxc(t, "config", "device", "show", instanceOf(t, d, "pt-www-")), "listen: tcp:127.0.0.1:"+port)
	var body string
	require.Eventually(t, func() bool {
		body, err = get()
		return err == nil && strings.Contains(body, "hello over the proxy")
	}, 30*time.Second, 250*time.Millisecond, "the container's server through the proxy: %q %v", body, err)

	out, code = f.run(t, "--remote", "l", "down", p)
	require.Equal(t, 0, code, out)
	assert.Empty(t, lxcList(t, d))
	_, err = get()
	assert.Error(t, err, "the listener went with the instance")
}
