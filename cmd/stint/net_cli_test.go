package main

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/stintdev/stint/internal/nettest"
	"github.com/stintdev/stint/internal/testenv"
	stintnet "github.com/stintdev/stint/net"
)

// netCLI is a CLI fixture with a guarded address range, a bridge of the
// test's own, and a cleanup that prunes the root's networks.
func netCLI(t *testing.T) (*cliFixture, string) {
	t.Helper()
	f := newCLI(t)
	testenv.RequiresTool(t, "nft", "lxc-attach", "lxc-stop")
	nettest.GuardRange(t)
	// The network state is host-wide; this test's (and its stint
	// processes') goes under its root, beside its own bridge.
	t.Setenv(stintnet.StateDirEnv, filepath.Join(f.root, "net"))
	t.Cleanup(func() {
		// After down and gc (later cleanups run first): the bridge and
		// its rules must go too.
		if out, code := f.run(t, "net", "prune"); code != 0 {
			t.Errorf("cleanup: stint net prune: exit %d: %s", code, out)
		}
	})
	return f, nettest.TestBridge("c")
}

// TestCLINetworkModes runs, through the stint binary, a none job (only
// lo), a host job (the host's interfaces) and eight bridged jobs at -j 8
// (eight distinct addresses on the bridge's subnet); then nothing of them
// is left, and `stint net prune` removes the bridge.
func TestCLINetworkModes(t *testing.T) {
	f, br := netCLI(t)
	p := f.spec(t, `
[job.none]
image = "busybox"
network = "none"
run = ["echo ifs $(ls /sys/class/net)"]

[job.host]
image = "busybox"
network = "host"
run = ["echo ifs $(ls /sys/class/net)"]

[job.br]
image = "busybox"
network = { mode = "bridge", bridge = "`+br+`" }
run = ["echo addr $(ip -4 -o addr show eth0 | awk '{print $4}')", "sleep 1"]
[job.br.matrix]
i = ["1", "2", "3", "4", "5", "6", "7", "8"]
`)
	out, code := f.run(t, "run", p, "-j", "8")
	require.Equal(t, 0, code, out)

	assert.Regexp(t, `(?m)^\[none\] ifs lo\s*$`, out, "a none job must see only lo")
	hostIfs := regexp.MustCompile(`(?m)^\[host\] ifs (.*)$`).FindStringSubmatch(out)
	require.NotNil(t, hostIfs, out)
	for _, want := range hostInterfaces(t) {
		assert.Contains(t, strings.Fields(hostIfs[1]), want, "a host job must see the host's interfaces")
	}

	addrs := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\[(br\[i=\d\])\] addr (\S+)`).FindAllStringSubmatch(out, -1) {
		addrs[m[2]] = m[1]
	}
	require.Len(t, addrs, 8, "eight bridged jobs at once need eight distinct addresses:\n%s", out)
	var subnet netip.Prefix
	for a := range addrs {
		p, err := netip.ParsePrefix(a)
		require.NoError(t, err)
		assert.True(t, stintnet.Range.Contains(p.Addr()), "address %s outside stint's range", a)
		if !subnet.IsValid() {
			subnet = p.Masked()
		}
		assert.Equal(t, subnet, p.Masked(), "all on one bridge's subnet")
	}

	st := netState(t, f.root)
	assert.Empty(t, st.Leases, "leases left after the run")
	assert.Contains(t, st.Bridges, br)
	hosts, err := os.ReadFile(filepath.Join(f.root, "net", br, "hosts"))
	require.NoError(t, err)
	for a := range addrs {
		assert.NotContains(t, string(hosts), strings.Split(a, "/")[0], "hosts entry left")
	}
	assertNoVeth(t, st, br)
	f.assertClean(t)

	out, code = f.run(t, "net", "prune")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "removed bridge "+br)
	nettest.AssertBridgeGone(t, br)
	assert.NoDirExists(t, filepath.Join(f.root, "net", br))
}

// TestCLINetworkKill9ThenGC kills a bridged `stint run` with SIGKILL: its
// container, veth, address and hosts entry stay until `stint gc`, which
// releases them all; `stint net prune` then leaves nothing.
func TestCLINetworkKill9ThenGC(t *testing.T) {
	f, br := netCLI(t)
	p := f.spec(t, `
[job.long]
image = "busybox"
network = { mode = "bridge", bridge = "`+br+`" }
run = ["echo started", "sleep 600"]
`)
	c := f.startUntil(t, "[long] started", "run", p)
	require.NoError(t, c.Process.Signal(syscall.SIGKILL))
	_ = c.Wait()
	ents, err := os.ReadDir(filepath.Join(f.root, "containers"))
	require.NoError(t, err)
	require.Len(t, ents, 1, "the killed run should have left its container")
	name := ents[0].Name()
	st := netState(t, f.root)
	require.Contains(t, st.Leases, name, "the killed run's lease")
	_, err = netlink.LinkByName(stintnet.VethName(name))
	require.NoError(t, err, "the killed run's veth")

	out, code := f.run(t, "gc")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "removed "+name)
	nettest.AssertReleased(t, f.root, br, name)
	f.assertClean(t)

	out, code = f.run(t, "net", "prune")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "removed bridge "+br)
	nettest.AssertBridgeGone(t, br)
	st = netState(t, f.root)
	assert.Empty(t, st.Bridges)
	assert.Empty(t, st.Leases)
}

// TestCLILongLivedBridge applies two long-lived containers on one bridge:
// they reach each other by address and by name, a fixed address is
// honoured, a published port answers on the host's 127.0.0.1, a taken
// address is refused naming the container; `stint down` releases it all.
func TestCLILongLivedBridge(t *testing.T) {
	f, br := netCLI(t)
	// The bridge's subnet is chosen on first use: make it exist now, to
	// write a fixed address in it.
	m, err := stintnet.Open(f.root)
	require.NoError(t, err)
	seed, err := m.Attach(context.Background(), stintnet.Request{Container: "seed", Mode: stintnet.ModeBridge, Bridge: br})
	require.NoError(t, err)
	require.NoError(t, m.Release(context.Background(), "seed"))
	gw := netip.MustParseAddr(seed.Gateway).As4()
	fixed := netip.AddrFrom4([4]byte{gw[0], gw[1], gw[2], 10}).String()

	dir := filepath.Join(f.dir, "ll")
	require.NoError(t, os.Mkdir(dir, 0o755))
	write := func(extra string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stint.toml"), []byte(`version = 1
name = "nettest"
[storage]
driver = "overlay"
[image.busybox]
builder = "busybox"

[container.alpha]
image = "busybox"
command = ["/bin/sh", "-c", "mkdir -p /www && echo hello-from-alpha > /www/index.html && exec httpd -f -p 8080 -h /www"]
network = { mode = "bridge", bridge = "`+br+`", ipv4 = "`+fixed+`" }
ports = ["18080:8080/tcp"]

[container.beta]
image = "busybox"
command = ["/bin/sleep", "100000"]
network = { mode = "bridge", bridge = "`+br+`" }
`+extra), 0o644))
	}
	write("")
	t.Cleanup(func() {
		write("")
		if out, code := f.run(t, "down", dir); code != 0 {
			t.Errorf("cleanup: stint down: exit %d: %s", code, out)
		}
	})
	out, code := f.run(t, "apply", dir)
	require.Equal(t, 0, code, out)

	st := netState(t, f.root)
	require.Contains(t, st.Leases, "nettest.alpha")
	require.Contains(t, st.Leases, "nettest.beta")
	assert.Equal(t, fixed, st.Leases["nettest.alpha"].IPv4, "the fixed address")
	attach := func(name string, argv ...string) (string, error) {
		c := f.cmd()
		c.Path = "/usr/bin/lxc-attach"
		c.Args = append([]string{"lxc-attach", "-P", filepath.Join(f.root, "containers"), "-n", name, "--", "/bin/busybox"}, argv...)
		b, err := c.CombinedOutput()
		return string(b), err
	}
	out, err = attach("nettest.beta", "ping", "-c1", "-W2", fixed)
	assert.NoError(t, err, "beta pings alpha by address: %s", out)
	out, err = attach("nettest.beta", "ping", "-c1", "-W2", "alpha")
	assert.NoError(t, err, "beta pings alpha by name: %s", out)
	var page string
	for range 50 { // httpd may still be starting
		page, err = attach("nettest.beta", "wget", "-q", "-O", "-", "http://alpha:8080/")
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	assert.NoError(t, err, "beta fetches from alpha by name: %s", page)
	assert.Equal(t, "hello-from-alpha\n", page)
	out, err = attach("nettest.alpha", "ping", "-c1", "-W2", "beta")
	assert.NoError(t, err, "alpha pings beta by name: %s", out)

	// The published port, from the host over loopback.
	body, err := httpGet("http://127.0.0.1:18080/")
	assert.NoError(t, err, "published port 18080 from the host")
	assert.Equal(t, "hello-from-alpha\n", body)

	// Stopped by hand and started again by apply: the same addresses, the
	// port forward still in place.
	betaAddr := st.Leases["nettest.beta"].IPv4
	for _, n := range []string{"nettest.alpha", "nettest.beta"} {
		c := f.cmd()
		c.Path = "/usr/bin/lxc-stop"
		c.Args = []string{"lxc-stop", "-P", filepath.Join(f.root, "containers"), "-n", n, "-k"}
		b, err := c.CombinedOutput()
		require.NoError(t, err, "lxc-stop %s: %s", n, b)
	}
	out, code = f.run(t, "apply", dir)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "alpha started")
	st = netState(t, f.root)
	assert.Equal(t, betaAddr, st.Leases["nettest.beta"].IPv4, "beta's address changed across a restart")
	body, err = httpGet("http://127.0.0.1:18080/")
	assert.NoError(t, err, "published port 18080 after a restart")
	assert.Equal(t, "hello-from-alpha\n", body)
	out, err = attach("nettest.beta", "ping", "-c1", "-W2", "alpha")
	assert.NoError(t, err, "beta pings alpha by name after a restart: %s", out)

	// A third container asking for alpha's address is refused by name.
	write(`
[container.gamma]
image = "busybox"
command = ["/bin/sleep", "100000"]
network = { mode = "bridge", bridge = "` + br + `", ipv4 = "` + fixed + `" }
`)
	out, code = f.run(t, "apply", dir)
	assert.Equal(t, 3, code, out)
	assert.Contains(t, out, "gamma")
	assert.Contains(t, out, fixed+" is taken by container nettest.alpha", out)
	assert.NotContains(t, netState(t, f.root).Leases, "nettest.gamma")

	write("")
	out, code = f.run(t, "down", dir)
	require.Equal(t, 0, code, out)
	nettest.AssertReleased(t, f.root, br, "nettest.alpha", "nettest.beta", "nettest.gamma")
	assert.NotContains(t, nettest.NftRules(t), "dnat to "+fixed, "the port forward outlived its container")
	_, err = httpGet("http://127.0.0.1:18080/")
	assert.Error(t, err, "port 18080 still answers after down")
	out, code = f.run(t, "net", "prune")
	require.Equal(t, 0, code, out)
	nettest.AssertBridgeGone(t, br)
}

// httpGet fetches url within a few seconds, retrying while the listener
// starts.
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	var err error
	for range 20 {
		var resp *http.Response
		resp, err = c.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b), rerr
		}
		time.Sleep(150 * time.Millisecond)
	}
	return "", err
}

// netState reads root's network state as a new stint process would.
func netState(t *testing.T, root string) *stintnet.State {
	t.Helper()
	m, err := stintnet.Open(root)
	require.NoError(t, err)
	st, err := m.List(context.Background())
	require.NoError(t, err)
	return st
}

// assertNoVeth checks that no veth is on bridge br any more.
func assertNoVeth(t *testing.T, _ *stintnet.State, br string) {
	t.Helper()
	b, err := netlink.LinkByName(br)
	require.NoError(t, err)
	links, err := netlink.LinkList()
	require.NoError(t, err)
	for _, l := range links {
		assert.NotEqual(t, b.Attrs().Index, l.Attrs().MasterIndex, "link %s still on bridge %s", l.Attrs().Name, br)
	}
}

// hostInterfaces lists interfaces a host job must see: lo and the one of
// the default route (others come and go with parallel tests).
func hostInterfaces(t *testing.T) []string {
	t.Helper()
	out := []string{"lo"}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	require.NoError(t, err)
	for _, r := range routes {
		if r.Dst == nil && r.LinkIndex > 0 {
			l, err := netlink.LinkByIndex(r.LinkIndex)
			require.NoError(t, err)
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}
