package stintnet

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestSubnetBesideRejectRoutes: routes that only reject (unreachable,
// blackhole, prohibit), such as a test's guard over the whole range, use
// no addresses and do not push the bridge out of its subnet; a real route
// still does.
func TestSubnetBesideRejectRoutes(t *testing.T) {
	freshNetns(t)
	_, guard, err := net.ParseCIDR("10.88.0.0/16")
	require.NoError(t, err)
	require.NoError(t, netlink.RouteAdd(&netlink.Route{Dst: guard, Type: unix.RTN_UNREACHABLE}))
	_, black, err := net.ParseCIDR("10.88.0.0/20")
	require.NoError(t, err)
	require.NoError(t, netlink.RouteAdd(&netlink.Route{Dst: black, Type: unix.RTN_BLACKHOLE}))
	lo, err := netlink.LinkByName("lo")
	require.NoError(t, err)
	_, used, err := net.ParseCIDR("10.88.0.0/24")
	require.NoError(t, err)
	require.NoError(t, netlink.RouteAdd(&netlink.Route{Dst: used, LinkIndex: lo.Attrs().Index}))

	m := openManager(t)
	l, err := m.Attach(t.Context(), Request{Container: "c1", Mode: ModeBridge})
	require.NoError(t, err)
	assert.Equal(t, "10.88.1.1", l.Gateway, "the bridge should take the first /24 that no real route uses")
	require.NoError(t, m.Release(t.Context(), "c1"))
	require.NoError(t, m.Prune(t.Context()))
}

// TestPruneLeavesOtherRoots: two stint roots share the host's kernel (and
// stint's nftables table). Pruning one keeps the other's port forwards,
// bridge rules and veths; the table goes with the last rule.
func TestPruneLeavesOtherRoots(t *testing.T) {
	freshNetns(t)
	ctx := t.Context()
	a, b := openManager(t), openManager(t)
	la, err := a.Attach(ctx, Request{Container: "ca", Mode: ModeBridge, Bridge: "sta", Ports: []Port{{HostPort: 8081, ContainerPort: 80}}})
	require.NoError(t, err)
	// A veth on root a's bridge, as LXC makes for a running container.
	attrs := netlink.NewLinkAttrs()
	attrs.Name = la.HostVeth
	require.NoError(t, netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "capeer"}))
	veth, err := netlink.LinkByName(la.HostVeth)
	require.NoError(t, err)
	br, err := netlink.LinkByName("sta")
	require.NoError(t, err)
	require.NoError(t, netlink.LinkSetMaster(veth, br))

	_, err = b.Attach(ctx, Request{Container: "cb", Mode: ModeBridge, Bridge: "stb"})
	require.NoError(t, err)
	require.NoError(t, b.Release(ctx, "cb"))
	require.NoError(t, b.Prune(ctx))

	rules := nftList(t)
	assert.Contains(t, rules, "dnat to "+la.IPv4+":80", "root b's prune removed root a's port forward")
	assert.Contains(t, rules, `"stint bridge sta"`, "root b's prune removed root a's bridge rules")
	assert.NotContains(t, rules, `"stint bridge stb"`)
	_, err = netlink.LinkByName(la.HostVeth)
	assert.NoError(t, err, "root b's prune removed root a's veth")

	require.NoError(t, a.Release(ctx, "ca"))
	require.NoError(t, a.Prune(ctx))
	assert.Empty(t, nftList(t), "the table outlived the last root's prune")
	for _, n := range []string{"sta", "stb", la.HostVeth} {
		_, err := netlink.LinkByName(n)
		assert.ErrorAs(t, err, &netlink.LinkNotFoundError{}, n)
	}
}
