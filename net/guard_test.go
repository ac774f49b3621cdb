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
