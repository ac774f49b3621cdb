package stintnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func openManager(t *testing.T) *Manager {
	t.Helper()
	m, err := OpenDir(t.TempDir())
	require.NoError(t, err)
	return m
}

// bridgeRules is what stint's table holds for bridge stint0 on 10.88.0.0/24.
var bridgeRules = []string{
	`ip saddr 10.88.0.0/24 oifname != "stint0" masquerade`,
	`oifname "stint0" ip saddr 127.0.0.0/8 masquerade`,
	`oifname "stint0" ip saddr 10.88.0.0/24 ct status dnat masquerade`,
	`iifname "stint0" accept`,
	`oifname "stint0" ct state established,related accept`,
	`oifname "stint0" ct status dnat accept`,
}

func TestBridgeIdempotent(t *testing.T) {
	freshNetns(t)
	m := openManager(t)
	ctx := t.Context()
	for i := 0; i < 3; i++ {
		_, err := m.Attach(ctx, Request{Container: fmt.Sprint("c", i), Mode: ModeBridge})
		require.NoError(t, err)
	}
	link, err := netlink.LinkByName(DefaultBridge)
	require.NoError(t, err)
	assert.IsType(t, &netlink.Bridge{}, link)
	assert.Equal(t, bridgeAlias, link.Attrs().Alias)
	assert.NotZero(t, link.Attrs().Flags&net.FlagUp, "bridge is up")
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	require.NoError(t, err)
	require.Len(t, addrs, 1)
	assert.Equal(t, "10.88.0.1/24", addrs[0].IPNet.String())
	for key, want := range map[string]string{"net/ipv4/ip_forward": "1", "net/ipv4/conf/stint0/route_localnet": "1"} {
		v, err := readSysctl(key)
		require.NoError(t, err)
		assert.Equal(t, want, strings.TrimSpace(v), key)
	}

	rules := nftList(t)
	for _, r := range bridgeRules {
		assert.Equal(t, 1, strings.Count(rules, r), "rule %q once in:\n%s", r, rules)
	}
	// The kernel lost the bridge (a reboot): the next Attach repairs it.
	require.NoError(t, netlink.LinkDel(link))
	_, err = m.Attach(ctx, Request{Container: "c9", Mode: ModeBridge})
	require.NoError(t, err)
	_, err = netlink.LinkByName(DefaultBridge)
	require.NoError(t, err)

	// Prune leaves a bridge in use alone ...
	require.NoError(t, m.Prune(ctx))
	_, err = netlink.LinkByName(DefaultBridge)
	require.NoError(t, err, "prune removed a bridge in use")
	// ... and removes it, its rules and its files once unused.
	for _, c := range []string{"c0", "c1", "c2", "c9"} {
		require.NoError(t, m.Release(ctx, c))
	}
	require.NoError(t, m.Prune(ctx))
	_, err = netlink.LinkByName(DefaultBridge)
	assert.ErrorAs(t, err, &netlink.LinkNotFoundError{})
	assert.Empty(t, nftList(t), "table left after prune")
	_, err = os.Stat(m.hostsPath(DefaultBridge))
	assert.ErrorIs(t, err, os.ErrNotExist)
	st, err := m.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, st.Bridges)
	assert.Empty(t, st.Leases)
}

func TestBridgeNotOurs(t *testing.T) {
	freshNetns(t)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "br-user"
	require.NoError(t, netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}))
	m := openManager(t)
	_, err := m.Attach(t.Context(), Request{Container: "c", Mode: ModeBridge, Bridge: "br-user"})
	require.ErrorIs(t, err, ErrNotManaged)
	st, err := m.List(t.Context())
	require.NoError(t, err)
	assert.Empty(t, st.Leases, "a failed attach left a lease")
}

func TestSubnetAvoidsHostRoute(t *testing.T) {
	freshNetns(t)
	// A host interface already on 10.88.0.0/24 (a bridge: this kernel
	// has no dummy links).
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "hostbr0"
	require.NoError(t, netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}))
	d, err := netlink.LinkByName("hostbr0")
	require.NoError(t, err)
	a, _ := netlink.ParseAddr("10.88.0.5/24")
	require.NoError(t, netlink.AddrAdd(d, a))
	require.NoError(t, netlink.LinkSetUp(d))

	m := openManager(t)
	l, err := m.Attach(t.Context(), Request{Container: "c", Mode: ModeBridge})
	require.NoError(t, err)
	assert.Equal(t, "10.88.1.1", l.Gateway)
	assert.True(t, strings.HasPrefix(l.IPv4, "10.88.1."), l.IPv4)
}

// TestAttachReleaseCycles: 50 attach/start/release cycles (with a port
// forward each) leave no veth, address, hosts entry or rule behind.
func TestAttachReleaseCycles(t *testing.T) {
	host := freshNetns(t)
	m := openManager(t)
	ctx := t.Context()
	// A long-lived neighbour, so the bridge and the hosts file stay.
	keep, err := m.Attach(ctx, Request{Container: "keeper", Mode: ModeBridge})
	require.NoError(t, err)
	linksBefore := linkNames(t)
	for i := 0; i < 50; i++ {
		name := fmt.Sprint("job-", i)
		l, err := m.Attach(ctx, Request{Container: name, Mode: ModeBridge, Ports: []Port{{HostPort: 18080, ContainerPort: 80}}})
		require.NoError(t, err)
		ns := newPeerNetns(t, host)
		plug(t, l, ns)
		require.NoError(t, m.Started(ctx, l, 1))
		assert.Contains(t, readFile(t, l.Hosts), l.IPv4+"\t"+name+"\n")
		rules := nftList(t)
		assert.Equal(t, 2, strings.Count(rules, fmt.Sprintf("dnat to %s:80", l.IPv4)), "prerouting and output DNAT while attached:\n%s", rules)

		// The container is gone without a clean stop: the veth stays
		// until Release (which must also survive a second call).
		require.NoError(t, m.Release(ctx, name))
		require.NoError(t, m.Release(ctx, name))
		assert.NotContains(t, readFile(t, l.Hosts), name+"\n")
		assert.NotContains(t, nftList(t), "dnat to", "port forward left after release")
		_, err = netlink.LinkByName(l.HostVeth)
		assert.ErrorAs(t, err, &netlink.LinkNotFoundError{}, "veth left after release")
	}
	assert.Equal(t, linksBefore, linkNames(t))
	st, err := m.List(ctx)
	require.NoError(t, err)
	assert.Len(t, st.Leases, 1)
	assert.Contains(t, st.Leases, keep.Container)
	rules := nftList(t)
	for _, r := range bridgeRules {
		assert.Equal(t, 1, strings.Count(rules, r), "rule %q once in:\n%s", r, rules)
	}
	// Only the keeper is left in the hosts file, after the gateway.
	hosts := readFile(t, keep.Hosts)
	assert.True(t, strings.HasSuffix(hosts, "\tgateway host.stint.internal\n"+keep.IPv4+"\tkeeper\n"), hosts)
}

func TestFixedAddressConflict(t *testing.T) {
	freshNetns(t)
	m := openManager(t)
	ctx := t.Context()
	web, err := m.Attach(ctx, Request{Container: "stint-p-web", Hostname: "web", Mode: ModeBridge, IPv4: "10.88.0.10"})
	require.NoError(t, err)
	assert.Equal(t, "10.88.0.10", web.IPv4)
	// The broadcast address too: without it LXC sets brd 0.0.0.255 (lxcrt
	// renders it from the prefix; TestRender's bridge golden shows it).
	assert.Equal(t, 24, web.PrefixLen)
	assert.Equal(t, "10.88.0.255", broadcast(netip.PrefixFrom(netip.MustParseAddr(web.IPv4), web.PrefixLen)).String())
	_, err = m.Attach(ctx, Request{Container: "stint-p-db", Mode: ModeBridge, IPv4: "10.88.0.10"})
	require.ErrorIs(t, err, ErrAddressInUse)
	assert.Contains(t, err.Error(), "10.88.0.10 is taken by container stint-p-web")
	// Published ports collide the same way.
	_, err = m.Attach(ctx, Request{Container: "a", Mode: ModeBridge, Ports: []Port{{HostPort: 8080, ContainerPort: 80}}})
	require.NoError(t, err)
	_, err = m.Attach(ctx, Request{Container: "b", Mode: ModeBridge, Ports: []Port{{HostPort: 8080, ContainerPort: 81}}})
	require.ErrorIs(t, err, ErrPortInUse)
	assert.EqualError(t, err, "container b: host port 8080/tcp is published by container a: port in use")
	st, err := m.List(ctx)
	require.NoError(t, err)
	assert.Len(t, st.Leases, 2, "a refused attach left a lease")
}

// TestTwoContainersAndPortForward: two namespaces on the bridge reach each
// other by address, and a port published on the host reaches a listener in
// one of them over 127.0.0.1, masqueraded to the gateway's address.
func TestTwoContainersAndPortForward(t *testing.T) {
	host := freshNetns(t)
	m := openManager(t)
	ctx := t.Context()
	a, err := m.Attach(ctx, Request{Container: "alpha", Mode: ModeBridge, Ports: []Port{{HostPort: 8080, ContainerPort: 80}}})
	require.NoError(t, err)
	b, err := m.Attach(ctx, Request{Container: "beta", Mode: ModeBridge})
	require.NoError(t, err)
	nsA, nsB := newPeerNetns(t, host), newPeerNetns(t, host)
	plug(t, a, nsA)
	plug(t, b, nsB)
	require.NoError(t, m.Started(ctx, a, 1))
	require.NoError(t, m.Started(ctx, b, 1))

	// Both names are in the shared hosts file.
	hosts := readFile(t, a.Hosts)
	assert.Contains(t, hosts, a.IPv4+"\talpha\n")
	assert.Contains(t, hosts, b.IPv4+"\tbeta\n")

	var ln net.Listener
	inNetns(t, nsA, host, func() {
		ln, err = net.Listen("tcp", ":80")
		require.NoError(t, err)
	})
	t.Cleanup(func() { ln.Close() })
	go serveRemoteAddr(ln)

	// beta -> alpha by address, across the bridge.
	inNetns(t, nsB, host, func() {
		got := dialAndRead(t, ctx, net.JoinHostPort(a.IPv4, "80"))
		assert.Equal(t, b.IPv4, got, "alpha sees beta's own address")
	})
	// host -> 127.0.0.1:8080 -> alpha:80, masqueraded to the gateway.
	got := dialAndRead(t, ctx, "127.0.0.1:8080")
	assert.Equal(t, a.Gateway, got)
	// beta -> the host's published port -> alpha (hairpin), masqueraded
	// too, or alpha would answer beta directly and the connection break.
	inNetns(t, nsB, host, func() {
		got := dialAndRead(t, ctx, net.JoinHostPort(b.Gateway, "8080"))
		assert.Equal(t, a.Gateway, got)
	})

	// Released, the forward is gone.
	require.NoError(t, m.Release(ctx, "alpha"))
	d := net.Dialer{Timeout: 500 * time.Millisecond}
	c, err := d.DialContext(ctx, "tcp", "127.0.0.1:8080")
	if err == nil {
		c.Close()
	}
	assert.Error(t, err, "the published port still answers after release")
}

// serveRemoteAddr answers each connection with the peer's address.
func serveRemoteAddr(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		h, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		_, _ = io.WriteString(c, h+"\n")
		c.Close()
	}
}

func dialAndRead(t *testing.T, ctx context.Context, addr string) string {
	t.Helper()
	d := net.Dialer{Timeout: 3 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	require.NoError(t, err, "dial %s", addr)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(3*time.Second)))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		require.NoError(t, err)
	}
	return strings.TrimSpace(line)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func linkNames(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	require.NoError(t, err)
	var out []string
	for _, l := range links {
		out = append(out, l.Attrs().Name)
	}
	return out
}

// TestReleaseAfterKill: the process that attached is gone (kill -9); a new
// one, knowing only the container's name, releases everything, and Prune
// clears what a crash between kernel change and state save left.
func TestReleaseAfterKill(t *testing.T) {
	host := freshNetns(t)
	root := t.TempDir()
	m1, err := OpenDir(root)
	require.NoError(t, err)
	ctx := t.Context()
	l, err := m1.Attach(ctx, Request{Container: "victim", Mode: ModeBridge, Ports: []Port{{HostPort: 2222, ContainerPort: 22}}})
	require.NoError(t, err)
	plug(t, l, newPeerNetns(t, host))

	m2, err := OpenDir(root) // the next stint process
	require.NoError(t, err)
	require.NoError(t, m2.Release(ctx, "victim"))
	_, err = netlink.LinkByName(l.HostVeth)
	assert.ErrorAs(t, err, &netlink.LinkNotFoundError{})
	assert.NotContains(t, nftList(t), "dnat to")
	assert.NotContains(t, readFile(t, l.Hosts), "victim")

	// Orphans without a lease: a port rule and a host veth.
	fw, err := newFirewall()
	require.NoError(t, err)
	require.NoError(t, fw.addPortRules("ghost", netip.MustParseAddr("10.88.0.200"), []Port{{HostPort: 9999, ContainerPort: 99, Proto: "udp"}}))
	attrs := netlink.NewLinkAttrs()
	attrs.Name = VethName("ghost")
	require.NoError(t, netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "ghostpeer"}))
	require.Contains(t, nftList(t), "dnat to 10.88.0.200:99")
	require.NoError(t, m2.Prune(ctx))
	assert.Empty(t, nftList(t))
	_, err = netlink.LinkByName(VethName("ghost"))
	assert.ErrorAs(t, err, &netlink.LinkNotFoundError{})
	_, err = netlink.LinkByName(DefaultBridge)
	assert.ErrorAs(t, err, &netlink.LinkNotFoundError{})
}

// TestParallelAttach: like `stint run -j 8`, several goroutines, each with
// its own Manager on one root (as separate processes would have), attach at
// once: every container gets a distinct address and a hosts entry, and the
// bridge's rules exist once.
func TestParallelAttach(t *testing.T) {
	ns := freshNetns(t)
	root := t.TempDir()
	const workers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Into the test's namespace; the thread stays locked and ends
			// with the goroutine, so it never returns to the pool changed.
			runtime.LockOSThread()
			if err := netns.Set(ns); err != nil {
				errs <- err
				return
			}
			m, err := OpenDir(root)
			if err != nil {
				errs <- err
				return
			}
			for i := 0; i < each; i++ {
				_, err := m.Attach(context.Background(), Request{Container: fmt.Sprintf("job-%d-%d", w, i), Mode: ModeBridge})
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	m := openManagerAt(t, root)
	st, err := m.List(t.Context())
	require.NoError(t, err)
	require.Len(t, st.Leases, workers*each)
	seen := map[string]string{}
	hosts := readFile(t, m.hostsPath(DefaultBridge))
	for c, l := range st.Leases {
		if other, dup := seen[l.IPv4]; dup {
			t.Fatalf("%s given to %s and %s", l.IPv4, other, c)
		}
		seen[l.IPv4] = c
		assert.Contains(t, hosts, l.IPv4+"\t"+c+"\n")
	}
	rules := nftList(t)
	for _, r := range bridgeRules {
		assert.Equal(t, 1, strings.Count(rules, r), "rule %q once in:\n%s", r, rules)
	}
}

func openManagerAt(t *testing.T, dir string) *Manager {
	t.Helper()
	m, err := OpenDir(dir)
	require.NoError(t, err)
	return m
}
