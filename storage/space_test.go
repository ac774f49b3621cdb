package storage_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
)

// fillVolume writes zeros into a file in dir until the filesystem says
// ENOSPC (any other error fails the test).
func fillVolume(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	_ = f.Sync() // flushing a full filesystem may fail too; the space is taken either way
}

// fullBtrfsPool is a 256 MiB btrfs pool with a golden volume and a clone
// that filled the pool.
func fullBtrfsPool(t *testing.T) (storage.Driver, storage.Volume) {
	t.Helper()
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "btrfs", "mkfs.btrfs", "losetup")
	d := btrfsPool(t, 256<<20)
	ctx := context.Background()
	// Last before the unmount: let the cleaner finish with what the test
	// deleted, so that the loop device goes at once on a loaded machine.
	t.Cleanup(func() { _, _ = d.(storage.Spacer).Space(context.Background(), "") })
	src := storage.SourceFunc(func(_ context.Context, dir string) error {
		return os.WriteFile(filepath.Join(dir, "hello"), []byte("hi"), 0o644)
	})
	if _, err := d.CreateGolden(ctx, "img", src, storage.GoldenOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), "img") })
	v, err := d.Clone(ctx, "img", "filler")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), "filler") })
	fillVolume(t, v.Rootfs)
	return d, v
}

// TestBtrfsFullPoolNextCloneAtOnce: once the clone that filled the pool is
// destroyed, the next clone succeeds at once and has room to write (btrfs
// frees a deleted subvolume's space only after its cleaner ran and a
// transaction committed: ~30 s unless stint asks).
func TestBtrfsFullPoolNextCloneAtOnce(t *testing.T) {
	d, _ := fullBtrfsPool(t)
	ctx := context.Background()
	if err := d.Destroy(ctx, "filler"); err != nil {
		t.Fatal(err)
	}
	v, err := d.Clone(ctx, "img", "next")
	if err != nil {
		t.Fatalf("clone after a full pool: %v", err)
	}
	defer d.Destroy(ctx, "next")
	if err := os.WriteFile(filepath.Join(v.Rootfs, "data"), make([]byte, 32<<20), 0o644); err != nil {
		t.Errorf("write 32 MiB into the next clone: %v", err)
	}
	sp, err := d.(storage.Spacer).Space(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if sp.Free < sp.Size/3 {
		t.Errorf("with the filler gone the pool reports %s", sp)
	}
}

// TestBtrfsCloneRetriesAfterOutsideDelete: a subvolume deleted by someone
// else (another process, without waiting) frees its space late; a clone
// that meets ENOSPC meanwhile waits for the cleaner and retries.
func TestBtrfsCloneRetriesAfterOutsideDelete(t *testing.T) {
	d, v := fullBtrfsPool(t)
	ctx := context.Background()
	if out, err := exec.Command("btrfs", "subvolume", "delete", v.Rootfs).CombinedOutput(); err != nil {
		t.Fatalf("btrfs subvolume delete: %v: %s", err, out)
	}
	if _, err := d.Clone(ctx, "img", "next"); err != nil {
		t.Fatalf("clone after a delete: %v", err)
	}
	if err := d.Destroy(ctx, "next"); err != nil {
		t.Fatal(err)
	}
}

// TestBtrfsFullPoolError: a clone on a pool that is really full fails with
// ErrFull, naming the pool and its size.
func TestBtrfsFullPoolError(t *testing.T) {
	d, _ := fullBtrfsPool(t)
	ctx := context.Background()
	_, err := d.Clone(ctx, "img", "next")
	if err == nil {
		_ = d.Destroy(ctx, "next")
		t.Fatal("clone on a full pool succeeded")
	}
	if !errors.Is(err, storage.ErrFull) {
		t.Fatalf("clone on a full pool: %v, want ErrFull", err)
	}
	var fe *storage.FullError
	if !errors.As(err, &fe) || fe.Space.Size != 256<<20 {
		t.Fatalf("clone on a full pool: %#v, want a FullError of 256 MiB", fe)
	}
	if msg := err.Error(); !strings.Contains(msg, "is full") || !strings.Contains(msg, "256 MiB") {
		t.Errorf("message %q does not say the pool is full and how big", msg)
	}
	if _, err := d.Get(ctx, "next"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("failed clone left volume next: %v", err)
	}
	sp, err := d.(storage.Spacer).Space(ctx, "filler")
	if err != nil {
		t.Fatal(err)
	}
	if !sp.Full() {
		t.Errorf("Space of the filler: %+v, want full", sp)
	}
}

// TestOverlaySpace: Space reports the filesystem holding a volume's writes.
func TestOverlaySpace(t *testing.T) {
	testenv.RequiresRoot(t)
	d := openPool(t, storage.Config{Driver: "overlay", Root: t.TempDir()})
	ctx := context.Background()
	src := storage.SourceFunc(func(context.Context, string) error { return nil })
	if _, err := d.CreateGolden(ctx, "img", src, storage.GoldenOptions{}); err != nil {
		t.Fatal(err)
	}
	defer d.Destroy(ctx, "img")
	if _, err := d.Clone(ctx, "img", "c"); err != nil {
		t.Fatal(err)
	}
	defer d.Destroy(ctx, "c")
	sp, err := d.(storage.Spacer).Space(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(os.TempDir(), &st); err != nil {
		t.Fatal(err)
	}
	if sp.Size != st.Blocks*uint64(st.Bsize) || sp.Size == 0 || sp.Free > sp.Size {
		t.Errorf("Space %+v, want the size of the temp filesystem (%d)", sp, st.Blocks*uint64(st.Bsize))
	}
	if _, err := d.(storage.Spacer).Space(ctx, "absent"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Space of an absent volume: %v", err)
	}
}
