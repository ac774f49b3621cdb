package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/storage"
)

// TestCLIGCBtrfsRootWithoutSpec: `stint gc` without a spec opens the storage
// the root's spec configured (btrfs here), not driver auto, and removes a
// killed job's container, record and clone.
func TestCLIGCBtrfsRootWithoutSpec(t *testing.T) {
	testenv.RequiresTool(t, "mkfs.btrfs", "btrfs")
	f := newCLI(t)
	t.Cleanup(func() {
		// The goldens are read-only subvolumes: destroyed through the
		// driver, then the pool unmounted; and the root forgets it, or
		// newCLI's own cleanup (a later gc) would mount it again.
		_ = exec.Command(f.bin, "--root", f.root, "gc", "--all").Run()
		_ = os.Remove(filepath.Join(f.root, "storage.json"))
		ctx := context.Background()
		if drv, err := storage.Open(ctx, storage.Config{Driver: "btrfs", Root: f.root, Size: 512 << 20}); err == nil {
			var ids []string
			_ = drv.Walk(ctx, func(v storage.Volume) error { ids = append(ids, v.ID); return nil })
			for i := len(ids) - 1; i >= 0; i-- {
				_ = drv.Destroy(ctx, ids[i])
			}
			_ = drv.Close()
		}
		unmountUnder(t, f.root)
	})
	p := filepath.Join(f.dir, "stint.toml")
	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(specHead,
		`driver = "overlay"`, "driver = \"btrfs\"\nsize = \"512MiB\"", 1)+`
[job.pool]
image = "busybox"
run = ["echo started", "sleep 600"]
`), 0o644))
	c := f.startUntil(t, "[pool] started", "run", p)
	require.NoError(t, c.Process.Signal(syscall.SIGKILL))
	_ = c.Wait()
	out, code := f.run(t, "gc")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "removed stint-pool-")
	ents, err := os.ReadDir(filepath.Join(f.root, "containers"))
	require.NoError(t, err)
	assert.Empty(t, ents, "containers left in the LXC path")
	st, err := state.Open(filepath.Join(f.root, "state"))
	require.NoError(t, err)
	recs, err := st.List()
	require.NoError(t, err)
	assert.Empty(t, recs, "state records left")
	ctx := context.Background()
	drv, err := storage.Open(ctx, storage.Config{Driver: "btrfs", Root: f.root, Size: 512 << 20})
	require.NoError(t, err)
	defer drv.Close()
	require.NoError(t, drv.Walk(ctx, func(v storage.Volume) error {
		assert.Equal(t, storage.KindGolden, v.Kind, "clone %s left", v.ID)
		return nil
	}))
}

// unmountUnder unmounts everything mounted under root, deepest first and
// as often as stacked (the golden volumes and the btrfs pool stay mounted by
// design), then waits for the pool's autoclear loop device to go.
func unmountUnder(t *testing.T, root string) {
	for range 5 {
		ms := mountsUnder(t, root)
		sort.Sort(sort.Reverse(sort.StringSlice(ms)))
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			if unix.Unmount(m, 0) != nil {
				_ = unix.Unmount(m, unix.MNT_DETACH)
			}
		}
	}
	img := filepath.Join(root, "storage", "btrfs.img")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if out, _ := exec.Command("losetup", "-j", img).Output(); len(out) == 0 {
			return
		}
	}
}
