package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
	"github.com/stintdev/stint/storage/storagetest"
)

func TestBtrfs(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "btrfs", "mkfs.btrfs", "losetup")
	storagetest.Suite(t, "btrfs", func(t *testing.T) storage.Driver { return btrfsPool(t, 512<<20) })
}

// TestBtrfsLoopRemount: after a reboot (the loop pool unmounted), opening
// the pool again mounts the existing image with its volumes.
func TestBtrfsLoopRemount(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "btrfs", "mkfs.btrfs", "losetup")
	ctx := context.Background()
	root := t.TempDir()
	cfg := storage.Config{Driver: "btrfs", Root: root, Size: 256 << 20}
	t.Cleanup(func() { _ = unix.Unmount(storage.PoolPath(cfg), 0) })
	d := openPool(t, cfg)
	src := storage.SourceFunc(func(_ context.Context, dir string) error {
		return os.WriteFile(filepath.Join(dir, "f"), []byte("kept"), 0o644)
	})
	if _, err := d.CreateGolden(ctx, "img", src, storage.GoldenOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(storage.PoolPath(cfg), 0); err != nil {
		t.Fatalf("unmount pool: %v", err)
	}
	d2 := openPool(t, cfg)
	v, err := d2.Get(ctx, "img")
	if err != nil {
		t.Fatalf("Get after remount: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(v.Rootfs, "f")); err != nil || string(b) != "kept" {
		t.Errorf("golden after remount reads %q, %v", b, err)
	}
	if err := d2.Destroy(ctx, "img"); err != nil {
		t.Fatal(err)
	}
}
