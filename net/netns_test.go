package stintnet

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// freshNetns locks the test's goroutine to its thread and moves it into a
// new network namespace, as netlink's own tests do: the bridge, veths,
// sysctls and nftables rules a test makes stay out of the host's, and go
// away with the namespace when the test ends.
func freshNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	testenv.RequiresRoot(t)
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current netns: %v", err)
	}
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			// The thread stays locked and dies with the goroutine.
			t.Errorf("back to the original netns: %v", err)
			return
		}
		orig.Close()
		ns.Close()
		runtime.UnlockOSThread()
	})
	lo, err := netlink.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, netlink.LinkSetUp(lo))
	return ns
}

// newPeerNetns makes a second namespace (a simulated container) without
// leaving the current one.
func newPeerNetns(t *testing.T, host netns.NsHandle) netns.NsHandle {
	t.Helper()
	ns, err := netns.New()
	require.NoError(t, err)
	require.NoError(t, netns.Set(host))
	t.Cleanup(func() { ns.Close() })
	return ns
}

// inNetns runs fn with the thread in ns; sockets made in fn live there.
func inNetns(t *testing.T, ns, back netns.NsHandle, fn func()) {
	t.Helper()
	require.NoError(t, netns.Set(ns))
	defer func() { require.NoError(t, netns.Set(back)) }()
	fn()
}

// plug does what LXC does with a lease's lxc.net.0.* keys: a veth pair whose
// host side is lease.HostVeth on the bridge, the other side eth0 in ns with
// the lease's address and default route.
func plug(t *testing.T, l *Lease, ns netns.NsHandle) {
	t.Helper()
	br, err := netlink.LinkByName(l.Bridge)
	require.NoError(t, err)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = l.HostVeth
	attrs.MasterIndex = br.Attrs().Index
	peer := "p" + l.HostVeth[3:]
	require.NoError(t, netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: peer}))
	host, err := netlink.LinkByName(l.HostVeth)
	require.NoError(t, err)
	require.NoError(t, netlink.LinkSetUp(host))
	p, err := netlink.LinkByName(peer)
	require.NoError(t, err)
	require.NoError(t, netlink.LinkSetNsFd(p, int(ns)))

	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	defer h.Close()
	p, err = h.LinkByName(peer)
	require.NoError(t, err)
	require.NoError(t, h.LinkSetName(p, "eth0"))
	addr, err := netlink.ParseAddr(fmt.Sprintf("%s/%d", l.IPv4, l.PrefixLen))
	require.NoError(t, err)
	require.NoError(t, h.AddrAdd(p, addr))
	require.NoError(t, h.LinkSetUp(p))
	lo, err := h.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, h.LinkSetUp(lo))
	require.NoError(t, h.RouteAdd(&netlink.Route{LinkIndex: p.Attrs().Index, Gw: net.ParseIP(l.Gateway)}))
}

// nftList is `nft list table ip stint` in the test's namespace ("" when
// there is no such table).
func nftList(t *testing.T) string {
	t.Helper()
	testenv.RequiresTool(t, "nft", "nsenter")
	out, err := exec.Command("nsenter", fmt.Sprintf("--net=/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()),
		"nft", "list", "table", "ip", TableName).CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}
