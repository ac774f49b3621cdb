package storagetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stintdev/stint/storage"
)

// snapshotter returns d's Snapshotter; every driver Open returns has one.
func snapshotter(t *testing.T, d storage.Driver) storage.Snapshotter {
	t.Helper()
	s, ok := d.(storage.Snapshotter)
	if !ok {
		t.Fatalf("driver %s (%T) has no Snapshot", d.Name(), d)
	}
	return s
}

// testSnapshotClone: a cache's commit step. A snapshot of a clone is a
// read-only golden volume with the clone's contents at that moment (owners,
// modes, links, a deletion), independent of the clone afterwards: later
// writes don't reach it, destroying the clone keeps it, and it clones like
// any golden volume.
func testSnapshotClone(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	s := snapshotter(t, d)
	golden(t, d, "gen1", storage.GoldenOptions{})
	c := clone(t, d, "gen1", "job")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(c.Rootfs, "etc/hostname"), []byte("written by the job\n"), 0o644))
	must(os.Remove(filepath.Join(c.Rootfs, "bin/su")))
	must(os.MkdirAll(filepath.Join(c.Rootfs, "cache/go"), 0o750))
	must(os.WriteFile(filepath.Join(c.Rootfs, "cache/go/obj"), []byte("object"), 0o600))
	must(os.Lchown(filepath.Join(c.Rootfs, "cache/go/obj"), 1000, 1000))
	want := tree(t, c.Rootfs)

	g, err := s.Snapshot(ctx, "job", "gen2")
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if g.ID != "gen2" || g.Kind != storage.KindGolden || g.Parent != "" {
		t.Errorf("Snapshot returned %+v", g)
	}
	sameTree(t, "snapshot vs clone", want, tree(t, g.Rootfs), 0, 0)
	if err := os.WriteFile(filepath.Join(g.Rootfs, "new"), nil, 0o644); err == nil {
		t.Error("creating a file in a snapshot succeeded: it must be read-only")
	}

	// The clone goes on (a kept job), and goes; the snapshot stays.
	must(os.WriteFile(filepath.Join(c.Rootfs, "etc/hostname"), []byte("later\n"), 0o644))
	must(d.Destroy(ctx, "job"))
	g, err = d.Get(ctx, "gen2")
	if err != nil {
		t.Fatalf("Get of the snapshot after its clone went: %v", err)
	}
	sameTree(t, "snapshot after its clone went", want, tree(t, g.Rootfs), 0, 0)

	// The next generation: clone the snapshot; the old golden can go.
	next := clone(t, d, "gen2", "job2")
	sameTree(t, "clone of the snapshot", want, tree(t, next.Rootfs), 0, 0)
	must(d.Destroy(ctx, "gen1"))
	if err := d.Destroy(ctx, "gen2"); !errors.Is(err, storage.ErrInUse) {
		t.Errorf("Destroy of a snapshot with a clone: %v, want ErrInUse", err)
	}
}

// testSnapshotErrors: a golden volume is no source, an existing id is
// refused, a missing source is ErrNotFound, and a refused snapshot leaves
// nothing behind.
func testSnapshotErrors(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	s := snapshotter(t, d)
	golden(t, d, "img", storage.GoldenOptions{})
	clone(t, d, "img", "c")
	if _, err := s.Snapshot(ctx, "img", "x"); err == nil {
		t.Error("Snapshot of a golden volume succeeded")
	}
	if _, err := s.Snapshot(ctx, "c", "img"); !errors.Is(err, storage.ErrExists) {
		t.Errorf("Snapshot onto an existing id: %v, want ErrExists", err)
	}
	if _, err := s.Snapshot(ctx, "nope", "y"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Snapshot of a missing clone: %v, want ErrNotFound", err)
	}
	left, err := storage.Leftovers(d)
	if err != nil || len(left) > 0 {
		t.Errorf("leftovers after refused snapshots: %v, %v", left, err)
	}
	var ids []string
	_ = d.Walk(ctx, func(v storage.Volume) error { ids = append(ids, v.ID); return nil })
	if len(ids) != 2 {
		t.Errorf("volumes after refused snapshots: %v, want img and c", ids)
	}
}
