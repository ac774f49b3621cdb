package runner

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/runner/state"
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
	try := func(dir string) ([]reconcile.Outcome, error) {
		set, err := reconcile.LoadSpecs([]string{dir}, spec.Options{})
		require.NoError(t, err)
		require.Equal(t, "app", set.Name)
		h.backend.UseSet(set)
		_, outcomes, err := reconcile.Once(ctx, h.backend, set.Name, set.Containers, 4)
		return outcomes, err
	}
	write(x, "", "idle")
	write(y, "", "other")
	_, err := try(x)
	require.NoError(t, err)
	require.Equal(t, container.StateStopped, h.state(t, "app", "idle"))

	_, err = try(y)
	var owned *reconcile.SetOwnedError
	require.ErrorAs(t, err, &owned)
	assert.Contains(t, err.Error(), "set app is owned by specs in "+x+"; give this set its own `name` or run down there first")
	assert.Equal(t, container.StateStopped, h.state(t, "app", "idle"), "another directory's apply deleted the set's container")
	assert.Equal(t, container.StateAbsent, h.state(t, "app", "other"))

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
	assert.Equal(t, container.StateAbsent, h.state(t, "app", "idle"))
	assert.Equal(t, container.StateStopped, h.state(t, "app", "other"))
}

// TestSetOwnerThroughSymlink: the owner is a directory, not a path string.
// The same directory reached through a symlink owns the set; another
// directory is still refused. Pure: a state store with one record stands in
// for the set's container.
func TestSetOwnerThroughSymlink(t *testing.T) {
	tmp := t.TempDir()
	st, err := state.Open(filepath.Join(tmp, "state"))
	require.NoError(t, err)
	h, err := st.Create(&state.Record{Name: "app-web", Kind: state.KindContainer, Set: "app"})
	require.NoError(t, err)
	require.NoError(t, h.Release())
	b := &LongLived{Runner: &Runner{State: st}, SpecDir: filepath.Join(tmp, "reconcile")}
	set := func(dir string) *spec.Set {
		return &spec.Set{Name: "app", Files: []string{filepath.Join(dir, "stint.toml")}}
	}
	x1 := filepath.Join(tmp, "x1", "app")
	other := filepath.Join(tmp, "x2", "app")
	require.NoError(t, os.MkdirAll(x1, 0o755))
	require.NoError(t, os.MkdirAll(other, 0o755))
	require.NoError(t, os.Symlink(filepath.Join(tmp, "x1"), filepath.Join(tmp, "x1link")))

	require.NoError(t, b.checkOwner("app", set(x1), true))
	assert.NoError(t, b.checkOwner("app", set(filepath.Join(tmp, "x1link", "app")), false), "the same directory through a symlink")
	have, found, err := b.readOwner("app")
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, x1, have.Dir, "the owner is still the directory as first recorded")
	require.NoError(t, os.Remove(filepath.Join(tmp, "x1link")))
	assert.NoError(t, b.checkOwner("app", set(x1), false), "the directory itself, the symlink gone")
	var owned *reconcile.SetOwnedError
	err = b.checkOwner("app", set(other), false)
	require.ErrorAs(t, err, &owned)
	assert.Contains(t, err.Error(), "set app is owned by specs in ")
}

// TestSameDir: directories compare by identity; a recorded directory that
// is gone compares by its cleaned, resolved path.
func TestSameDir(t *testing.T) {
	tmp := t.TempDir()
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	require.NoError(t, os.Mkdir(a, 0o755))
	require.NoError(t, os.Mkdir(b, 0o755))
	require.NoError(t, os.Symlink(a, filepath.Join(tmp, "alink")))
	assert.True(t, sameDir(a, a))
	assert.True(t, sameDir(a, filepath.Join(tmp, "alink")))
	assert.True(t, sameDir(filepath.Join(tmp, "alink"), a+"/"))
	assert.False(t, sameDir(a, b))
	gone := filepath.Join(tmp, "gone")
	assert.True(t, sameDir(gone, gone))
	assert.False(t, sameDir(gone, a))
	assert.False(t, sameDir(a, gone))
}
