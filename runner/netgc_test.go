package runner_test

import (
	"context"
	"testing"

	"github.com/stintdev/stint/internal/nettest"
	"github.com/stintdev/stint/internal/testenv"
	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGCLeavesOtherRootsLeases: the network state is host-wide, so one
// root's gc sees the leases of every root. It releases its own leftover
// lease (no record) and keeps another root's, whose container it cannot
// know about.
func TestGCLeavesOtherRootsLeases(t *testing.T) {
	f := newRunner(t)
	testenv.RequiresTool(t, "nft")
	nettest.GuardRange(t)
	t.Setenv(stintnet.StateDirEnv, t.TempDir())
	ctx := context.Background()
	mine, err := stintnet.Open(f.root)
	require.NoError(t, err)
	f.r.Net = mine
	other, err := stintnet.Open(t.TempDir())
	require.NoError(t, err)
	br := nettest.TestBridge("g")
	t.Cleanup(func() {
		assert.NoError(t, other.Release(ctx, "other-root-c"))
		assert.NoError(t, mine.Prune(ctx))
	})
	_, err = other.Attach(ctx, stintnet.Request{Container: "other-root-c", Mode: stintnet.ModeBridge, Bridge: br})
	require.NoError(t, err)
	_, err = mine.Attach(ctx, stintnet.Request{Container: "my-leftover", Mode: stintnet.ModeBridge, Bridge: br})
	require.NoError(t, err)

	res, err := f.r.GC(ctx, runner.GCOptions{})
	require.NoError(t, err)
	assert.Contains(t, res.Removed, "network lease my-leftover")
	assert.NotContains(t, res.Removed, "network lease other-root-c")
	st, err := mine.List(ctx)
	require.NoError(t, err)
	assert.Contains(t, st.Leases, "other-root-c", "gc released another root's lease")
	assert.NotContains(t, st.Leases, "my-leftover")
}
