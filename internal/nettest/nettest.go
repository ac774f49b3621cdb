// Package nettest has the helpers of tests that run containers on stint's
// bridges (runner's and the CLI's): a guard route for the address range,
// per-process bridge names, and checks that nothing of a network is left.
package nettest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	stintnet "github.com/stintdev/stint/net"
)

// GuardRange makes the whole range stint's bridges use unreachable for the
// test's duration, so that nothing a test sends to a container address can
// leave the machine if a bridge is missing: a bridge's connected /24 is
// more specific and wins. The metric is the test process's own, so that
// parallel test processes each add and remove their own guard.
func GuardRange(t testing.TB) {
	t.Helper()
	_, dst, err := net.ParseCIDR(stintnet.Range.String())
	require.NoError(t, err)
	r := &netlink.Route{Dst: dst, Type: unix.RTN_UNREACHABLE, Priority: 5000 + os.Getpid()%10000}
	require.NoError(t, netlink.RouteAdd(r), "guard route unreachable %s", dst)
	t.Cleanup(func() {
		if err := netlink.RouteDel(r); err != nil {
			t.Errorf("remove guard route unreachable %s: %v", dst, err)
		}
	})
}

// TestBridge is a bridge name of this test process (up to 15 bytes).
func TestBridge(suffix string) string {
	return fmt.Sprintf("stt%d%s", os.Getpid()%100000, suffix)
}

// AssertReleased checks that nothing of containers' networks is left: no
// host veth, no lease, no hosts entry, no firewall rule naming them.
func AssertReleased(t testing.TB, root, bridge string, containers ...string) {
	t.Helper()
	m, err := stintnet.Open(root)
	require.NoError(t, err)
	st, err := m.List(context.Background())
	require.NoError(t, err)
	rules := NftRules(t)
	// The bridge's hosts file, as the net package documents it.
	hosts, _ := os.ReadFile(m.HostsFile(bridge))
	for _, c := range containers {
		_, err := netlink.LinkByName(stintnet.VethName(c))
		assert.ErrorAs(t, err, &netlink.LinkNotFoundError{}, "veth %s of %s left", stintnet.VethName(c), c)
		assert.NotContains(t, st.Leases, c, "lease of %s left", c)
		assert.NotContains(t, string(hosts), c, "hosts entry of %s left", c)
		assert.NotContains(t, rules, `"stint ports `+c+`"`, "port rules of %s left", c)
	}
}

// NftRules is stint's nftables table as nft prints it ("" when absent).
func NftRules(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("nft", "list", "table", "ip", stintnet.TableName).CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

// AssertBridgeGone checks that Prune removed bridge and its rules.
func AssertBridgeGone(t testing.TB, bridge string) {
	t.Helper()
	_, err := netlink.LinkByName(bridge)
	assert.ErrorAs(t, err, &netlink.LinkNotFoundError{}, "bridge %s left", bridge)
	assert.NotContains(t, NftRules(t), `"stint bridge `+bridge+`"`, "rules of bridge %s left", bridge)
}
