package storagetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stintdev/stint/storage"
)

// garblers spoil a volume's record (meta.json, next to its rootfs) the
// ways a crash, a full disk or a hand edit can.
var garblers = []struct {
	name string
	fn   func(meta string) error
}{
	{"garbled", func(m string) error { return os.WriteFile(m, []byte("{\"id\": \"img\", \x00"), 0o644) }},
	{"empty", func(m string) error { return os.WriteFile(m, nil, 0o644) }},
	{"missing", os.Remove},
	{"other id", func(m string) error {
		return os.WriteFile(m, []byte(`{"id":"someone-else","kind":"golden","token":"abc"}`), 0o644)
	}},
}

// testCorruptRecord: a golden volume with a corrupt record is an
// ErrCorrupt naming it to Get and Usage, Walk skips it (Corrupt lists it)
// and lists the rest, Sweep leaves its backend objects alone, Destroy
// refuses while it has clones and then removes it entirely, and its id
// can be made again; DestroyCorrupt removes only a corrupt one. The driver's teardown checks no backend object is left.
func testCorruptRecord(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	golden(t, d, "good", storage.GoldenOptions{})
	// DestroyCorrupt leaves a volume with a readable record alone.
	if err := storage.DestroyCorrupt(ctx, d, "good"); err != nil {
		t.Fatalf("DestroyCorrupt(healthy volume) = %v", err)
	}
	if _, err := d.Get(ctx, "good"); err != nil {
		t.Fatalf("Get after DestroyCorrupt of a healthy volume: %v", err)
	}
	for i, g := range garblers {
		t.Run(g.name, func(t *testing.T) {
			v, src := golden(t, d, "img", storage.GoldenOptions{})
			clone(t, d, "img", "c1")
			if err := g.fn(filepath.Join(filepath.Dir(v.Rootfs), "meta.json")); err != nil {
				t.Fatal(err)
			}
			checkCorrupt(t, d, "img")
			// Its objects are no orphans: a sweep must not take them.
			if err := d.Sweep(ctx); err != nil {
				t.Fatalf("Sweep with a corrupt volume: %v", err)
			}
			sameTree(t, "corrupt golden after Sweep", tree(t, src), tree(t, v.Rootfs), 0, 0)
			if err := d.Destroy(ctx, "img"); !errors.Is(err, storage.ErrInUse) {
				t.Fatalf("Destroy(corrupt golden with a clone) = %v, want ErrInUse", err)
			}
			if err := d.Destroy(ctx, "c1"); err != nil {
				t.Fatalf("Destroy(clone of a corrupt golden): %v", err)
			}
			destroy := d.Destroy // and every other case DestroyCorrupt
			if i%2 == 1 {
				destroy = func(ctx context.Context, id string) error { return storage.DestroyCorrupt(ctx, d, id) }
			}
			if err := destroy(ctx, "img"); err != nil {
				t.Fatalf("Destroy(corrupt golden): %v", err)
			}
			if _, err := d.Get(ctx, "img"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Get(destroyed corrupt golden) = %v, want ErrNotFound", err)
			}
			if bad, err := storage.Corrupt(d); err != nil || len(bad) != 0 {
				t.Errorf("Corrupt after Destroy = %v, %v; want none", bad, err)
			}
			if left, err := storage.Leftovers(d); err != nil || len(left) != 0 {
				t.Errorf("leftovers after Destroy: %v, %v", left, err)
			}
			golden(t, d, "img", storage.GoldenOptions{})
			if err := d.Destroy(ctx, "img"); err != nil {
				t.Fatalf("Destroy(remade golden): %v", err)
			}
		})
	}
}

// checkCorrupt checks what Get, Usage, Walk and Corrupt say of volume id,
// whose record is corrupt, and that Walk still lists the others.
func checkCorrupt(t *testing.T, d storage.Driver, id string) {
	t.Helper()
	ctx := context.Background()
	var ce *storage.CorruptError
	if _, err := d.Get(ctx, id); !errors.Is(err, storage.ErrCorrupt) || !errors.As(err, &ce) || ce.ID != id {
		t.Errorf("Get(corrupt) = %v, want a *CorruptError naming %s", err, id)
	}
	if _, err := d.Usage(ctx, id); !errors.Is(err, storage.ErrCorrupt) {
		t.Errorf("Usage(corrupt) = %v, want ErrCorrupt", err)
	}
	seen := map[string]bool{}
	if err := d.Walk(ctx, func(v storage.Volume) error { seen[v.ID] = true; return nil }); err != nil {
		t.Fatalf("Walk with a corrupt volume: %v", err)
	}
	if seen[id] || !seen["good"] || !seen["c1"] {
		t.Errorf("Walk listed %v; want good and c1, not %s", seen, id)
	}
	bad, err := storage.Corrupt(d)
	if err != nil || len(bad) != 1 || bad[0].ID != id {
		t.Errorf("Corrupt = %v, %v; want %s", bad, err, id)
	}
}

// testCorruptClone: a clone with a corrupt record keeps its files through
// Sweep; an overlay golden volume (which its clones read) refuses to go
// while a corrupt clone may be one of its own; Destroy removes the clone
// entirely, and then the golden volume goes.
func testCorruptClone(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	golden(t, d, "img", storage.GoldenOptions{})
	c := clone(t, d, "img", "c1")
	mark := filepath.Join(c.Rootfs, "written-by-job")
	if err := os.WriteFile(mark, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(c.Rootfs), "meta.json"), []byte("]"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, "c1"); !errors.Is(err, storage.ErrCorrupt) {
		t.Errorf("Get(corrupt clone) = %v, want ErrCorrupt", err)
	}
	if err := d.Sweep(ctx); err != nil {
		t.Fatalf("Sweep with a corrupt clone: %v", err)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Errorf("the corrupt clone's files after Sweep: %v", err)
	}
	if d.Name() == "overlay" {
		if err := d.Destroy(ctx, "img"); !errors.Is(err, storage.ErrInUse) {
			t.Fatalf("Destroy(overlay golden with a corrupt clone) = %v, want ErrInUse", err)
		}
	}
	if err := d.Destroy(ctx, "c1"); err != nil {
		t.Fatalf("Destroy(corrupt clone): %v", err)
	}
	if err := d.Destroy(ctx, "img"); err != nil {
		t.Fatalf("Destroy(golden after its corrupt clone): %v", err)
	}
	if left, err := storage.Leftovers(d); err != nil || len(left) != 0 {
		t.Errorf("leftovers after Destroy: %v, %v", left, err)
	}
}

// testTransientClone: a clone made without its record's fsync is a clone
// like any other (Get, Walk, its own files); with its record torn, as a
// power cut may leave it, Destroy still removes it entirely.
func testTransientClone(t *testing.T, d storage.Driver) {
	tc, ok := d.(storage.TransientCloner)
	if !ok {
		t.Fatalf("the %s driver has no CloneTransient", d.Name())
	}
	ctx := context.Background()
	golden(t, d, "img", storage.GoldenOptions{})
	v, err := tc.CloneTransient(ctx, "img", "t1")
	if err != nil {
		t.Fatalf("CloneTransient: %v", err)
	}
	if v.ID != "t1" || v.Kind != storage.KindClone || v.Parent != "img" {
		t.Errorf("CloneTransient returned %+v", v)
	}
	if got, err := d.Get(ctx, "t1"); err != nil || got.Rootfs != v.Rootfs || got.Parent != "img" {
		t.Errorf("Get(transient clone) = %+v, %v", got, err)
	}
	if _, err := tc.CloneTransient(ctx, "img", "t1"); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CloneTransient of an existing id = %v, want ErrExists", err)
	}
	if err := os.WriteFile(filepath.Join(v.Rootfs, "written-by-job"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(v.Rootfs), "meta.json"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Destroy(ctx, "t1"); err != nil {
		t.Fatalf("Destroy(transient clone with a torn record): %v", err)
	}
	if err := d.Destroy(ctx, "img"); err != nil {
		t.Fatalf("Destroy(golden): %v", err)
	}
	if left, err := storage.Leftovers(d); err != nil || len(left) != 0 {
		t.Errorf("leftovers after Destroy: %v, %v", left, err)
	}
}
