package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/storage"
)

// TestLongLivedRootfsEmptiedOutside: `lxc-destroy -f` by hand stops the
// container and empties its root filesystem (the overlay mount itself
// stays, so the destroy fails half done, leaving the definition). The next
// plan sees it as missing and apply recreates it, running; before, every
// apply tried to start the empty root and failed (or, before the settle
// check, said "started" with the container stopped).
func TestLongLivedRootfsEmptiedOutside(t *testing.T) {
	h := newHost(t)
	dir := specDir(t, "dmg", webV1)
	h.apply(t, dir)
	require.Equal(t, container.StateRunning, h.state(t, "dmg", "web"))
	name := reconcile.RuntimeName("dmg", "web")
	out, _ := exec.Command("lxc-destroy", "-f", "-n", name, "-P", filepath.Join(h.root, "containers")).CombinedOutput()
	t.Logf("lxc-destroy -f: %s", out)
	vol, err := h.drv.Get(context.Background(), name)
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(vol.Rootfs, "bin"))
	require.ErrorIs(t, err, os.ErrNotExist, "lxc-destroy left the rootfs whole: the test shows nothing")

	_, acts := h.plan(t, dir)
	require.Equal(t, map[string]reconcile.Kind{"web": reconcile.KindRecreate}, kinds(acts))
	h.apply(t, dir)
	assert.Equal(t, container.StateRunning, h.state(t, "dmg", "web"))
	h.consoleHas(t, "dmg", "web", "hello from web v1")
	_, acts = h.plan(t, dir)
	assert.Equal(t, map[string]reconcile.Kind{"web": reconcile.KindNone}, kinds(acts))
}

// TestRootfsLostRule: a root that lost most of its image's top-level
// entries counts as lost; one its owner pruned a little does not.
func TestRootfsLostRule(t *testing.T) {
	testenv.RequiresRoot(t) // the dir driver bind-mounts its golden volumes
	ctx := context.Background()
	drv, err := storage.Open(ctx, storage.Config{Driver: "dir", Root: t.TempDir()})
	require.NoError(t, err)
	defer drv.Close()
	src := storage.SourceFunc(func(_ context.Context, dir string) error {
		for _, d := range []string{"bin", "etc", "usr", "lib", "dev", "proc"} {
			if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
		return nil
	})
	_, err = drv.CreateGolden(ctx, "g", src, storage.GoldenOptions{})
	require.NoError(t, err)
	defer drv.Destroy(ctx, "g")
	b := &LongLived{Runner: &Runner{Storage: drv}}
	for _, tc := range []struct {
		remove []string
		lost   []string
	}{
		{nil, nil},
		{[]string{"usr"}, nil},
		{[]string{"usr", "dev", "proc"}, nil},
		{[]string{"bin", "etc", "usr"}, []string{"/bin", "/etc", "/usr"}},
		{[]string{"bin", "etc", "usr", "lib", "dev", "proc"}, []string{"/bin", "/etc", "/lib", "/usr"}},
	} {
		v, err := drv.Clone(ctx, "g", "c")
		require.NoError(t, err)
		for _, d := range tc.remove {
			require.NoError(t, os.Remove(filepath.Join(v.Rootfs, d)))
		}
		assert.Equal(t, tc.lost, b.rootfsLost(ctx, "c"), "removed %v", tc.remove)
		require.NoError(t, drv.Destroy(ctx, "c"))
	}
	assert.Nil(t, b.rootfsLost(ctx, "absent"))
}
