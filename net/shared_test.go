package stintnet

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
)

// TestRootsShareNetworkState: the bridge and the nftables table are the
// host's, so two stint roots share one allocator, one lock and one hosts
// file per bridge: their containers get distinct addresses, and one root's
// prune keeps the bridge while the other's container holds a lease.
func TestRootsShareNetworkState(t *testing.T) {
	freshNetns(t)
	state := t.TempDir()
	t.Setenv(StateDirEnv, state)
	ctx := t.Context()
	a, err := Open(t.TempDir())
	require.NoError(t, err)
	b, err := Open(t.TempDir())
	require.NoError(t, err)

	la, err := a.Attach(ctx, Request{Container: "stint-a-job", Mode: ModeBridge})
	require.NoError(t, err)
	lb, err := b.Attach(ctx, Request{Container: "stint-b-job", Mode: ModeBridge})
	require.NoError(t, err)
	assert.NotEqual(t, la.IPv4, lb.IPv4, "two roots were given one address")
	assert.True(t, a.Owns(la))
	assert.False(t, b.Owns(la), "root b owns root a's lease")
	assert.Equal(t, filepath.Join(state, DefaultBridge, "hosts"), la.Hosts)
	assert.Equal(t, la.Hosts, lb.Hosts, "one hosts file per bridge")
	hosts := readFile(t, la.Hosts)
	assert.Contains(t, hosts, la.IPv4+"\tstint-a-job\n")
	assert.Contains(t, hosts, lb.IPv4+"\tstint-b-job\n")

	require.NoError(t, b.Release(ctx, "stint-b-job"))
	require.NoError(t, b.Prune(ctx))
	_, err = netlink.LinkByName(DefaultBridge)
	require.NoError(t, err, "root b's prune deleted the bridge root a's container uses")
	assert.Contains(t, nftList(t), "stint bridge "+DefaultBridge)

	require.NoError(t, a.Release(ctx, "stint-a-job"))
	require.NoError(t, b.Prune(ctx))
	_, err = netlink.LinkByName(DefaultBridge)
	assert.ErrorAs(t, err, &netlink.LinkNotFoundError{}, "the unused bridge outlived prune")
}

// TestPruneKeepsBridgeWithPorts: the kernel has the last word: a bridge
// with a port (a link whose master it is) stays, even with no lease.
func TestPruneKeepsBridgeWithPorts(t *testing.T) {
	freshNetns(t)
	m := openManager(t)
	ctx := t.Context()
	_, err := m.Attach(ctx, Request{Container: "c1", Mode: ModeBridge})
	require.NoError(t, err)
	require.NoError(t, m.Release(ctx, "c1"))
	br, err := netlink.LinkByName(DefaultBridge)
	require.NoError(t, err)
	// A veth not named like stint's, as another tool would add.
	port := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "port0"}, PeerName: "port1"}
	require.NoError(t, netlink.LinkAdd(port))
	t.Cleanup(func() { _ = netlink.LinkDel(port) })
	require.NoError(t, netlink.LinkSetMaster(port, br))

	require.NoError(t, m.Prune(ctx))
	_, err = netlink.LinkByName(DefaultBridge)
	require.NoError(t, err, "prune deleted a bridge with a port")
	st, err := m.List(ctx)
	require.NoError(t, err)
	assert.Contains(t, st.Bridges, DefaultBridge)

	require.NoError(t, netlink.LinkDel(port))
	require.NoError(t, m.Prune(ctx))
	_, err = netlink.LinkByName(DefaultBridge)
	assert.ErrorAs(t, err, &netlink.LinkNotFoundError{})
}
