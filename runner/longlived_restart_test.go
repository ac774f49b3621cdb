package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/reconcile"
)

// TestLongLivedEnvChangeRestarts: a running container's env change is a
// pending restart in the plan, also when it was recorded without one (the
// old in-place update), and apply restarts it with the new env.
func TestLongLivedEnvChangeRestarts(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	dir := specDir(t, "rst", webV1)
	h.apply(t, dir)
	h.consoleHas(t, "rst", "web", "hello from web v1")

	writeSpec(t, dir, "rst", strings.ReplaceAll(webV1, "from web", "changed"))
	set, acts := h.plan(t, dir)
	require.Len(t, acts, 1)
	assert.Equal(t, reconcile.KindRestart, acts[0].Kind)
	assert.Equal(t, []string{"env changed: ~GREETING (needs a restart)"}, acts[0].Reasons)

	// Recorded while it runs (what apply did before restarts): still pending.
	require.NoError(t, h.backend.Update(ctx, "rst", set.Containers[0], acts[0].Hash))
	_, acts = h.plan(t, dir)
	assert.Equal(t, reconcile.KindRestart, acts[0].Kind)
	assert.Equal(t, []string{"env changed: ~GREETING (recorded, needs a restart)"}, acts[0].Reasons)

	acts = h.apply(t, dir)
	assert.Equal(t, reconcile.KindRestart, acts[0].Kind)
	assert.Equal(t, container.StateRunning, h.state(t, "rst", "web"))
	h.consoleHas(t, "rst", "web", "hello changed v1")
	_, acts = h.plan(t, dir)
	assert.Equal(t, reconcile.KindNone, acts[0].Kind, "restarted: nothing pending")

	// Restart by name: from the stored spec, running again.
	set2, name, err := h.backend.Find("web")
	require.NoError(t, err)
	require.NoError(t, h.backend.Restart(ctx, set2, name))
	assert.Equal(t, container.StateRunning, h.state(t, "rst", "web"))
	_, _, err = h.backend.Find("nosuch")
	assert.ErrorIs(t, err, ErrNoContainer)

	require.NoError(t, h.backend.Destroy(ctx, "rst", "web"))
	left, err := filepath.Glob(filepath.Join(h.backend.SpecDir, "*.json"))
	require.NoError(t, err)
	assert.Empty(t, left, "the stored and started specs go with the container")
	_, err = os.Stat(h.backend.ConsoleLog(reconcile.RuntimeName("rst", "web")))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
