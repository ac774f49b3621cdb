package reconcile

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/spec"
)

func named(n string, f func(*spec.Container)) spec.Container {
	return with(web(), func(c *spec.Container) {
		c.Name = n
		if f != nil {
			f(c)
		}
	})
}

func TestApplyBringsSetToSpecsAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	b := newFake()
	desired := []spec.Container{named("a", nil), named("b", func(c *spec.Container) { c.State = spec.StateStopped })}
	_, _, err := Once(ctx, b, "p", desired, 4)
	require.NoError(t, err)
	assert.Equal(t, StatusRunning, b.status("p", "a"))
	assert.Equal(t, StatusStopped, b.status("p", "b"))
	assert.ElementsMatch(t, []string{"create p/a", "start p/a", "create p/b"}, b.Calls())

	b.ResetCalls()
	actions, _, err := Once(ctx, b, "p", desired, 4)
	require.NoError(t, err)
	assert.Empty(t, b.Calls(), "a second apply calls nothing that writes")
	assert.Equal(t, 0, Summarize(actions).Changes())
}

func TestApplyRecreateUpdateDeleteDrift(t *testing.T) {
	ctx := context.Background()
	b := newFake()
	desired := []spec.Container{named("a", nil), named("b", nil), named("c", nil), named("d", nil)}
	_, _, err := Once(ctx, b, "p", desired, 2)
	require.NoError(t, err)
	b.put("p", "c", StatusStopped) // lxc-stop by hand
	b.put("p", "d", StatusMissing) // lxc-destroy by hand
	b.ResetCalls()

	desired = []spec.Container{
		named("a", func(c *spec.Container) { c.Command = []string{"/bin/other"} }),
		named("b", func(c *spec.Container) { c.Limits.Pids = 10 }),
		named("c", nil),
		named("d", nil),
	}
	desired = append(desired, named("e", nil))
	_, _, err = Once(ctx, b, "p", desired[:4], 2) // e not yet
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{
		"destroy p/a", "create p/a", "start p/a", // recreate
		"update p/b", "stop p/b", "start p/b", // in place, running: restart
		"start p/c",                              // drift
		"destroy p/d", "create p/d", "start p/d", // missing
	}, b.Calls())
	for _, n := range []string{"a", "b", "c", "d"} {
		assert.Equal(t, StatusRunning, b.status("p", n), n)
	}

	b.ResetCalls()
	_, _, err = Once(ctx, b, "p", desired[1:], 2)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"destroy p/a", "create p/e", "start p/e"}, b.Calls())
	assert.Equal(t, Status(""), b.status("p", "a"))
}

// TestApplyRestartsWhatRunsWithOldValues: an update recorded while the
// container ran (by an older stint, or a failed restart) is still planned,
// and carried out, as a restart.
func TestApplyRestartsWhatRunsWithOldValues(t *testing.T) {
	ctx := context.Background()
	b := newFake()
	_, _, err := Once(ctx, b, "p", []spec.Container{named("a", nil)}, 1)
	require.NoError(t, err)
	changed := named("a", func(c *spec.Container) { c.Env = map[string]string{"A": "2"} })
	require.NoError(t, b.Update(ctx, "p", changed, Hash(changed))) // recorded, not started
	b.ResetCalls()

	actions, _, err := Once(ctx, b, "p", []spec.Container{changed}, 1)
	require.NoError(t, err)
	require.Len(t, actions, 1)
	assert.Equal(t, KindRestart, actions[0].Kind)
	assert.Equal(t, []string{"update p/a", "stop p/a", "start p/a"}, b.Calls())

	b.ResetCalls()
	actions, _, err = Once(ctx, b, "p", []spec.Container{changed}, 1)
	require.NoError(t, err)
	assert.Equal(t, KindNone, actions[0].Kind, "restarted: nothing pending")
	assert.Empty(t, b.Calls())
}

func TestApplyFailureDoesNotStopOthers(t *testing.T) {
	ctx := context.Background()
	b := newFake()
	boom := errors.New("lxc said no")
	b.failOn["bad"] = boom
	desired := []spec.Container{named("bad", nil), named("good1", nil), named("good2", nil)}
	_, out, err := Once(ctx, b, "p", desired, 1)
	require.Error(t, err)
	assert.ErrorIs(t, err, boom)
	var ce *ContainerError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "bad", ce.Name)
	assert.Equal(t, "create", ce.Step)
	assert.Equal(t, "container p/bad: create: lxc said no", err.Error())
	assert.Equal(t, StatusRunning, b.status("p", "good1"))
	assert.Equal(t, StatusRunning, b.status("p", "good2"))
	require.Len(t, out, 3)
	assert.Equal(t, "container p/bad: create: lxc said no", out[0].Error)
	assert.NoError(t, out[1].Err)
}

func TestApplyParallelism(t *testing.T) {
	b := newFake()
	b.delay = 30 * time.Millisecond
	var desired []spec.Container
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		desired = append(desired, named(n, func(c *spec.Container) { c.State = spec.StateStopped }))
	}
	_, _, err := Once(context.Background(), b, "p", desired, 3)
	require.NoError(t, err)
	assert.Equal(t, 3, b.maxInFly, "independent containers run in parallel, bounded")

	b2 := newFake()
	b2.delay = 5 * time.Millisecond
	_, _, err = Once(context.Background(), b2, "p", desired, 1)
	require.NoError(t, err)
	assert.Equal(t, 1, b2.maxInFly)
}

func TestDownRemovesOnlyTheSet(t *testing.T) {
	ctx := context.Background()
	b := newFake()
	_, _, err := Once(ctx, b, "p", []spec.Container{named("a", nil), named("b", nil)}, 2)
	require.NoError(t, err)
	_, _, err = Once(ctx, b, "q", []spec.Container{named("a", nil)}, 2)
	require.NoError(t, err)

	actual, err := b.List(ctx, "p")
	require.NoError(t, err)
	_, err = Apply(ctx, b, Down("p", actual), 2)
	require.NoError(t, err)
	assert.Equal(t, Status(""), b.status("p", "a"))
	assert.Equal(t, Status(""), b.status("p", "b"))
	assert.Equal(t, StatusRunning, b.status("q", "a"), "another set's container with the same name survives")
}

func TestApplyListErrorDoesNothing(t *testing.T) {
	b := newFake()
	b.listErr = errors.New("state dir unreadable")
	_, _, err := Once(context.Background(), b, "p", []spec.Container{named("a", nil)}, 1)
	require.Error(t, err)
	assert.Empty(t, b.Calls())
}
