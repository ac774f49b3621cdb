package runner_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/testenv"
	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/spec"
)

// guardRange makes the whole range stint's bridges use unreachable for the
// test's duration, so that nothing a test sends to a container address can
// leave the machine if a bridge is missing: a bridge's connected /24 is
// more specific and wins. The metric is the test process's own, so that
// parallel test processes each add and remove their own guard.
func guardRange(t *testing.T) {
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

// testBridge is a bridge name of this test process (up to 15 bytes).
func testBridge(suffix string) string {
	return fmt.Sprintf("stt%d%s", os.Getpid()%100000, suffix)
}

// assertReleased checks that nothing of containers' networks is left: no
// host veth, no lease, no hosts entry, no firewall rule naming them.
func assertReleased(t *testing.T, root, bridge string, containers ...string) {
	t.Helper()
	m, err := stintnet.Open(root)
	require.NoError(t, err)
	st, err := m.List(context.Background())
	require.NoError(t, err)
	rules := nftRules(t)
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

// nftRules is stint's nftables table as nft prints it ("" when absent).
func nftRules(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("nft", "list", "table", "ip", stintnet.TableName).CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

// assertBridgeGone checks that Prune removed bridge and its rules.
func assertBridgeGone(t *testing.T, bridge string) {
	t.Helper()
	_, err := netlink.LinkByName(bridge)
	assert.ErrorAs(t, err, &netlink.LinkNotFoundError{}, "bridge %s left", bridge)
	assert.NotContains(t, nftRules(t), `"stint bridge `+bridge+`"`, "rules of bridge %s left", bridge)
}

// TestFiftyBridgedRuns runs 50 bridged jobs through the in-process runner,
// four at a time: each gets an address and reaches its gateway, and
// afterwards no veth, lease, hosts entry or rule of any of them is left;
// the bridge goes with Prune.
func TestFiftyBridgedRuns(t *testing.T) {
	f := newRunner(t)
	testenv.RequiresTool(t, "nft")
	guardRange(t)
	m, err := stintnet.Open(f.root)
	require.NoError(t, err)
	f.r.Net = m
	br := testBridge("f")
	t.Cleanup(func() { assert.NoError(t, m.Prune(context.Background())) })
	var jobs []spec.Job
	for i := range 50 {
		j := job(fmt.Sprintf("b%02d", i), "ip -4 -o addr show eth0", "ping -c1 -W2 gateway >/dev/null && echo gateway-ok")
		j.Network = spec.Network{Mode: "bridge", Bridge: br}
		jobs = append(jobs, j)
	}
	results := f.r.RunJobs(context.Background(), jobs, 4)
	var names []string
	for _, res := range results {
		require.True(t, res.Passed(), "%+v\n%s", res, f.out.String())
		names = append(names, res.Container)
	}
	assert.Equal(t, 50, strings.Count(f.out.String(), "gateway-ok"), f.out.String())
	assertReleased(t, f.root, br, names...)
	f.assertClean(t)
	require.NoError(t, m.Prune(context.Background()))
	assertBridgeGone(t, br)
}
