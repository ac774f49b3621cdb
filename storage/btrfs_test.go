package storage_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestBtrfsNeedsNoToolPerClone: a clone and its destroy are ioctls, not
// execs of btrfs-progs: they work with no tool on PATH.
func TestBtrfsNeedsNoToolPerClone(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "btrfs", "mkfs.btrfs", "losetup")
	ctx := context.Background()
	d := btrfsPool(t, 256<<20)
	src := storage.SourceFunc(func(_ context.Context, dir string) error {
		return os.WriteFile(filepath.Join(dir, "f"), []byte("golden"), 0o644)
	})
	if _, err := d.CreateGolden(ctx, "img", src, storage.GoldenOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "/nonexistent")
	for i := range 3 {
		v, err := d.Clone(ctx, "img", "c")
		if err != nil {
			t.Fatalf("clone %d without tools: %v", i, err)
		}
		if b, err := os.ReadFile(filepath.Join(v.Rootfs, "f")); err != nil || string(b) != "golden" {
			t.Fatalf("clone reads %q, %v", b, err)
		}
		if err := d.Destroy(ctx, "c"); err != nil {
			t.Fatalf("destroy %d without tools: %v", i, err)
		}
	}
	if err := d.Destroy(ctx, "img"); err != nil {
		t.Fatal(err)
	}
}

// TestBtrfsDestroyNestedSubvolumes: a container may make subvolumes in its
// root (no privilege needed); destroying the clone deletes them too, and
// leaves no subvolume behind.
func TestBtrfsDestroyNestedSubvolumes(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "btrfs", "mkfs.btrfs", "losetup")
	ctx := context.Background()
	d := btrfsPool(t, 256<<20)
	if _, err := d.CreateGolden(ctx, "img", storage.SourceFunc(func(context.Context, string) error { return nil }), storage.GoldenOptions{}); err != nil {
		t.Fatal(err)
	}
	v, err := d.Clone(ctx, "img", "c")
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"a", "a/b", "a/b/c", "d"} {
		if out, err := exec.Command("btrfs", "subvolume", "create", filepath.Join(v.Rootfs, sub)).CombinedOutput(); err != nil {
			t.Fatalf("btrfs subvolume create %s: %v: %s", sub, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(v.Rootfs, "a/b/file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(ctx, "c"); err != nil {
		t.Fatalf("destroy a clone with nested subvolumes: %v", err)
	}
	// Deleted subvolumes are gone from the list at once (their space
	// comes back later); the golden volume's is the only one left.
	pool := filepath.Dir(filepath.Dir(filepath.Dir(v.Rootfs)))
	out, err := exec.Command("btrfs", "subvolume", "list", pool).CombinedOutput()
	if err != nil {
		t.Fatalf("btrfs subvolume list: %v: %s", err, out)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.HasSuffix(lines[0], "/img/rootfs") {
		t.Errorf("subvolumes after destroy, want only the golden one:\n%s", out)
	}
	if err := d.Destroy(ctx, "img"); err != nil {
		t.Fatal(err)
	}
}
