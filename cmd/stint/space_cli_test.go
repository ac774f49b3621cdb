package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
)

// TestCLIFullPool: a job that fills its btrfs pool fails (exit 1) with a
// message that the pool is full and how big it is, and the next job
// succeeds at once (not ~30 s later, when btrfs would have freed the
// filler's subvolume on its own).
func TestCLIFullPool(t *testing.T) {
	testenv.RequiresTool(t, "mkfs.btrfs", "btrfs")
	f := newCLI(t)
	cfg := storage.Config{Driver: "btrfs", Root: f.root, Size: 300 << 20}
	t.Cleanup(func() {
		_ = exec.Command(f.bin, "--root", f.root, "gc", "--all").Run()
		_ = os.Remove(filepath.Join(f.root, "storage.json"))
		ctx := context.Background()
		if drv, err := storage.Open(ctx, cfg); err == nil {
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
		`driver = "overlay"`, "driver = \"btrfs\"\nsize = \"300MiB\"", 1)+`
[job.fill]
image = "busybox"
run = ["dd if=/dev/zero of=/big bs=1M"]

[job.next]
image = "busybox"
run = ["dd if=/dev/zero of=/data bs=1M count=32 && echo wrote"]
`), 0o644))
	out, code := f.run(t, "run", p, "fill")
	require.Equal(t, 1, code, out)
	assert.Regexp(t, `FAILED +fill .*exit 1; storage pool \S+ is full: .* free of 300 MiB`, out)
	out, code = f.run(t, "run", p, "next")
	require.Equal(t, 0, code, "the job after a full pool: %s", out)
	assert.Contains(t, out, "[next] wrote")
	ents, err := os.ReadDir(filepath.Join(f.root, "containers"))
	require.NoError(t, err)
	assert.Empty(t, ents, "containers left in the LXC path")
	ctx := context.Background()
	drv, err := storage.Open(ctx, cfg)
	require.NoError(t, err)
	defer drv.Close()
	require.NoError(t, drv.Walk(ctx, func(v storage.Volume) error {
		assert.Equal(t, storage.KindGolden, v.Kind, "clone %s left", v.ID)
		return nil
	}))
}
