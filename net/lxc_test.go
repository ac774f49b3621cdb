package stintnet

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// lxc runs an lxc-* tool in the test's network namespace: LXC's command
// socket is an abstract unix socket, which lives in a network namespace.
// It also gets a mount namespace with its own /sys, since liblxc looks up
// the bridge under /sys/class/net, and sysfs shows the mounter's namespace.
func lxc(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	argv := []string{fmt.Sprintf("--net=/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()),
		"unshare", "--mount", "--propagation", "private", "sh", "-c", `mount -t sysfs sysfs /sys && exec "$@"`, "sh", tool}
	cmd := exec.Command("nsenter", append(argv, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startContainer starts a privileged busybox container in lxcpath with the
// lease's LXC keys, running init (argv) as PID 1, and stops it at cleanup.
func startContainer(t *testing.T, lxcpath, name string, l *Lease, init string) {
	t.Helper()
	dir := filepath.Join(lxcpath, name)
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "www"} {
		require.NoError(t, os.MkdirAll(filepath.Join(rootfs, d), 0o755))
	}
	bb, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(rootfs, "www/index.html"), []byte("hello from "+name+"\n"), 0o644))
	cfg := []string{
		"lxc.uts.name = " + name,
		"lxc.rootfs.path = dir:" + rootfs,
		"lxc.mount.auto = proc:rw sys:ro",
		"lxc.autodev = 1",
		"lxc.init.cmd = " + init,
	}
	for _, kv := range lxcKeys(l) {
		cfg = append(cfg, kv[0]+" = "+kv[1])
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config"), []byte(strings.Join(cfg, "\n")+"\n"), 0o644))
	log := filepath.Join(dir, "lxc.log")
	t.Cleanup(func() {
		if out, err := lxc(t, "lxc-stop", "-P", lxcpath, "-n", name, "-k"); err != nil && !strings.Contains(out, "not running") {
			t.Errorf("lxc-stop %s: %v: %s", name, err, out)
		}
	})
	if out, err := lxc(t, "lxc-start", "-P", lxcpath, "-n", name, "-d", "-l", "INFO", "-o", log); err != nil {
		logText, _ := os.ReadFile(log)
		t.Fatalf("lxc-start %s: %v: %s\n%s", name, err, out, logText)
	}
	out, err := lxc(t, "lxc-wait", "-P", lxcpath, "-n", name, "-s", "RUNNING", "-t", "10")
	require.NoError(t, err, out)
}

// lxcKeys renders a lease as LXC config keys, as runner/lxcrt does from
// the runner's typed bridge attachment (the net package itself knows no
// runtime's keys).
func lxcKeys(l *Lease) [][2]string {
	switch l.Mode {
	case ModeNone:
		return [][2]string{{"lxc.net.0.type", "empty"}}
	case ModeHost:
		return [][2]string{{"lxc.net.0.type", "none"}}
	}
	p := netip.PrefixFrom(netip.MustParseAddr(l.IPv4), l.PrefixLen)
	return [][2]string{
		{"lxc.net.0.type", "veth"},
		{"lxc.net.0.link", l.Bridge},
		{"lxc.net.0.flags", "up"},
		{"lxc.net.0.name", "eth0"},
		{"lxc.net.0.veth.pair", l.HostVeth},
		{"lxc.net.0.ipv4.address", fmt.Sprintf("%s %s", p, broadcast(p))},
		{"lxc.net.0.ipv4.gateway", l.Gateway},
		{"lxc.mount.entry", l.Hosts + " etc/hosts none bind,ro,create=file 0 0"},
		{"lxc.mount.entry", l.ResolvConf + " etc/resolv.conf none bind,ro,create=file 0 0"},
	}
}

// TestLXCContainersByName: two real LXC containers on a stint bridge ping
// each other by address and by name (the bind-mounted hosts file), and the
// host reaches one's web server through a published port on 127.0.0.1.
// Everything runs in a fresh network namespace.
func TestLXCContainersByName(t *testing.T) {
	testenv.RequiresLXC(t)
	testenv.RequiresTool(t, "nsenter", "unshare")
	freshNetns(t)
	m := openManager(t)
	ctx := t.Context()
	lxcpath := t.TempDir()

	a, err := m.Attach(ctx, Request{Container: "stint-t-alpha", Hostname: "alpha", Mode: ModeBridge, Ports: []Port{{HostPort: 8080, ContainerPort: 80}}})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Release(ctx, "stint-t-alpha")) })
	b, err := m.Attach(ctx, Request{Container: "stint-t-beta", Hostname: "beta", Mode: ModeBridge})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Release(ctx, "stint-t-beta")) })

	startContainer(t, lxcpath, "stint-t-alpha", a, "/bin/busybox httpd -f -p 80 -h /www")
	startContainer(t, lxcpath, "stint-t-beta", b, "/bin/busybox sleep 600")
	require.NoError(t, m.Started(ctx, a, 0))
	require.NoError(t, m.Started(ctx, b, 0))

	attach := func(name string, argv ...string) (string, error) {
		return lxc(t, "lxc-attach", append([]string{"-P", lxcpath, "-n", name, "--", "/bin/busybox"}, argv...)...)
	}
	out, err := attach("stint-t-beta", "ping", "-c", "1", "-W", "3", a.IPv4)
	require.NoError(t, err, "beta pings alpha by address: %s", out)
	out, err = attach("stint-t-beta", "ping", "-c", "1", "-W", "3", "alpha")
	require.NoError(t, err, "beta pings alpha by name: %s", out)
	assert.Contains(t, out, a.IPv4)
	out, err = attach("stint-t-alpha", "ping", "-c", "1", "-W", "3", "beta")
	require.NoError(t, err, "alpha pings beta by name: %s", out)
	out, err = attach("stint-t-beta", "ip", "-4", "addr", "show", "eth0")
	require.NoError(t, err, out)
	assert.Contains(t, out, "inet "+b.IPv4+"/24 brd 10.88.0.255 ", "eth0's broadcast address")
	out, err = attach("stint-t-beta", "cat", "/etc/resolv.conf")
	require.NoError(t, err, out)
	assert.Contains(t, out, "nameserver")

	// A third container joining later is visible at once (hosts file
	// rewritten in place under the bind mounts).
	g, err := m.Attach(ctx, Request{Container: "stint-t-gamma", Hostname: "gamma", Mode: ModeBridge})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Release(ctx, "stint-t-gamma")) })
	out, err = attach("stint-t-beta", "cat", "/etc/hosts")
	require.NoError(t, err, out)
	assert.Contains(t, out, g.IPv4+"\tgamma stint-t-gamma\n")

	out, err = attach("stint-t-beta", "wget", "-q", "-O-", "http://alpha/")
	require.NoError(t, err, "beta fetches alpha's page by name: %s", out)
	assert.Equal(t, "hello from stint-t-alpha\n", out)

	// The published port, from the host over loopback. (The socket is
	// made here, in the test's locked thread and namespace: http.Client and
	// assert.Eventually would dial from other threads, in the host's.)
	var resp string
	get := func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:8080", 2*time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
			return false
		}
		b, _ := io.ReadAll(c)
		resp = string(b)
		status, _, _ := strings.Cut(resp, "\r\n")
		return strings.HasPrefix(status, "HTTP/1.") && strings.Contains(status, " 200 ")
	}
	for deadline := time.Now().Add(10 * time.Second); !get() && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	assert.Regexp(t, `^HTTP/1\.[01] 200 `, resp)
	assert.True(t, strings.HasSuffix(resp, "\r\n\r\nhello from stint-t-alpha\n"), resp)
}

// TestLXCNoneAndHost: a none container sees only lo; a host container sees
// the (test's) host interfaces, the bridge among them.
func TestLXCNoneAndHost(t *testing.T) {
	testenv.RequiresLXC(t)
	testenv.RequiresTool(t, "nsenter", "unshare")
	freshNetns(t)
	m := openManager(t)
	ctx := t.Context()
	lxcpath := t.TempDir()
	// A bridge on the "host", for the host container to see.
	_, err := m.Attach(ctx, Request{Container: "anchor", Mode: ModeBridge})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Release(ctx, "anchor")) })

	for _, tc := range []struct {
		mode string
		want []string
	}{
		{ModeNone, []string{"lo"}},
		{ModeHost, []string{"lo", "stint0"}},
	} {
		// No t.Run: a subtest runs on another thread, outside this namespace.
		name := "stint-t-" + tc.mode
		l, err := m.Attach(ctx, Request{Container: name, Mode: tc.mode})
		require.NoError(t, err)
		startContainer(t, lxcpath, name, l, "/bin/busybox sleep 600")
		out, err := lxc(t, "lxc-attach", "-P", lxcpath, "-n", name, "--", "/bin/busybox", "ls", "/sys/class/net")
		require.NoError(t, err, out)
		assert.Equal(t, tc.want, strings.Fields(out), tc.mode)
	}
}
