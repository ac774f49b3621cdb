package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/spec"
)

// TestSetOwnedByItsDirectory: two unrelated projects in directories both
// named app get the default set name "app". The second one's apply must
// not delete the first one's containers: it is refused, naming the
// directory that owns the set. With `name = "app"` in both, the user asked
// for one set, and the second apply takes it over.
func TestSetOwnedByItsDirectory(t *testing.T) {
	h := newHost(t)
	ctx := context.Background()
	x := filepath.Join(t.TempDir(), "x", "app")
	y := filepath.Join(t.TempDir(), "y", "app")
	write := func(dir, name, container string) {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		body := "version = 1\n" + name + "\n[image.bb]\nbuilder = \"busybox\"\n\n[container." + container + "]\nimage = \"bb\"\nstate = \"stopped\"\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, "stint.toml"), []byte(body), 0o644))
	}
	try := func(dir string) ([]Outcome, error) {
		set, err := LoadSpecs([]string{dir}, spec.Options{})
		require.NoError(t, err)
		require.Equal(t, "app", set.Name)
		h.backend.UseSet(set)
		_, outcomes, err := Once(ctx, h.backend, set.Name, set.Containers, 4)
		return outcomes, err
	}
	write(x, "", "idle")
	write(y, "", "other")
	_, err := try(x)
	require.NoError(t, err)
	require.Equal(t, runner.StateStopped, h.state(t, "app", "idle"))

	_, err = try(y)
	var owned *SetOwnedError
	require.ErrorAs(t, err, &owned)
	assert.Contains(t, err.Error(), "set app is owned by specs in "+x+"; give this set its own `name` or run down there first")
	assert.Equal(t, runner.StateStopped, h.state(t, "app", "idle"), "another directory's apply deleted the set's container")
	assert.Equal(t, runner.StateAbsent, h.state(t, "app", "other"))

	// Named in one of them only: still two projects by accident.
	write(y, `name = "app"`, "other")
	_, err = try(y)
	require.ErrorAs(t, err, &owned)

	// Named in both: one set, whichever directory applies it.
	write(x, `name = "app"`, "idle")
	_, err = try(x)
	require.NoError(t, err)
	_, err = try(y)
	require.NoError(t, err)
	assert.Equal(t, runner.StateAbsent, h.state(t, "app", "idle"))
	assert.Equal(t, runner.StateStopped, h.state(t, "app", "other"))
}
