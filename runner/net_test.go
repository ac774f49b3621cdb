package runner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/nettest"
	"github.com/stintdev/stint/internal/testenv"
	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/spec"
)

// TestFiftyBridgedRuns runs 50 bridged jobs through the in-process runner,
// four at a time: each gets an address and reaches its gateway, and
// afterwards no veth, lease, hosts entry or rule of any of them is left;
// the bridge goes with Prune.
func TestFiftyBridgedRuns(t *testing.T) {
	f := newRunner(t)
	testenv.RequiresTool(t, "nft")
	nettest.GuardRange(t)
	m, err := stintnet.Open(f.root)
	require.NoError(t, err)
	f.r.Net = m
	br := nettest.TestBridge("f")
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
	nettest.AssertReleased(t, f.root, br, names...)
	f.assertClean(t)
	require.NoError(t, m.Prune(context.Background()))
	nettest.AssertBridgeGone(t, br)
}
