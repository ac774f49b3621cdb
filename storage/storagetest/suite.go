// Package storagetest is the conformance suite every storage driver runs:
// each driver's test is a gate and one call to Suite with a factory that
// builds a real, throwaway pool (a loop-file btrfs, a t.TempDir(), a ZFS
// pool or LVM thin pool on a scratch disk in the QEMU guest).
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stintdev/stint/storage"
	"golang.org/x/sys/unix"
)

// Factory opens a fresh, empty pool for one test; it tears the pool down
// in t.Cleanup (after the suite destroyed every volume it made).
type Factory func(t *testing.T) storage.Driver

// Suite runs the conformance tests against the driver factory makes.
func Suite(t *testing.T, name string, factory func(t *testing.T) storage.Driver) {
	tests := []struct {
		name string
		fn   func(t *testing.T, d storage.Driver)
	}{
		{"GoldenFromTarball", testGoldenFromTarball},
		{"GoldenFromDirectory", testGoldenFromDirectory},
		{"CloneIsolation", testCloneIsolation},
		{"GoldenReadOnly", testGoldenReadOnly},
		{"DestroyInUse", testDestroyInUse},
		{"GetWalkUsage", testGetWalkUsage},
		{"GetRemounts", testGetRemounts},
		{"SweepInterruptedDestroy", testSweepInterruptedDestroy},
		{"FailedCreateLeavesNothing", testFailedCreate},
		{"Errors", testErrors},
		{"Shift", testShift},
		{"ShiftACL", testShiftACL},
		{"CloseTwice", testCloseTwice},
		{"Parallel", testParallel},
		{"SnapshotClone", testSnapshotClone},
		{"SnapshotErrors", testSnapshotErrors},
		{"CorruptRecord", testCorruptRecord},
		{"CorruptClone", testCorruptClone},
		{"TransientClone", testTransientClone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := factory(t)
			if got := d.Name(); got != name {
				t.Fatalf("Name() = %q, want %q", got, name)
			}
			t.Cleanup(func() { destroyAll(t, d) })
			tc.fn(t, d)
		})
	}
}

// destroyAll removes every volume, clones first, and checks nothing is
// left, so the factory's teardown finds no mounts.
func destroyAll(t testing.TB, d storage.Driver) {
	ctx := context.Background()
	var goldens, clones []string
	err := d.Walk(ctx, func(v storage.Volume) error {
		if v.Kind == storage.KindGolden {
			goldens = append(goldens, v.ID)
		} else {
			clones = append(clones, v.ID)
		}
		return nil
	})
	if err != nil {
		// A closed driver: nothing to clean through it.
		return
	}
	for _, id := range append(clones, goldens...) {
		if err := d.Destroy(ctx, id); err != nil {
			t.Errorf("cleanup: destroy %s: %v", id, err)
		}
	}
	if err := d.Sweep(ctx); err != nil {
		t.Errorf("cleanup: sweep: %v", err)
	}
}

// entry is what the suite compares of a file.
type entry struct {
	Mode     fs.FileMode
	UID, GID uint32
	Data     string // file content or symlink target
}

// fixture writes a small root filesystem into dir: directories, a file, a
// symlink, a hard link, a setuid binary, a setgid directory, files owned by
// other users.
func fixture(t testing.TB, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin", "etc", "home/user", "tmp", "var/mail"} {
		must(os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	must(os.WriteFile(filepath.Join(dir, "etc/hostname"), []byte("golden\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "bin/tool"), bytes.Repeat([]byte("x"), 64<<10), 0o755))
	must(os.WriteFile(filepath.Join(dir, "bin/su"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Symlink("tool", filepath.Join(dir, "bin/link")))
	must(os.Link(filepath.Join(dir, "bin/tool"), filepath.Join(dir, "bin/hard")))
	must(os.WriteFile(filepath.Join(dir, "home/user/notes"), []byte("mine\n"), 0o600))
	must(os.Lchown(filepath.Join(dir, "home/user"), 1000, 1000))
	must(os.Lchown(filepath.Join(dir, "home/user/notes"), 1000, 1000))
	must(os.Lchown(filepath.Join(dir, "var/mail"), 0, 8))
	// chown before chmod: chown clears setuid/setgid.
	must(os.Chmod(filepath.Join(dir, "bin/su"), fs.ModeSetuid|0o755))
	must(os.Chmod(filepath.Join(dir, "var/mail"), fs.ModeSetgid|0o775))
	must(os.Chmod(filepath.Join(dir, "tmp"), fs.ModeSticky|0o777))
	must(os.Chmod(dir, 0o755))
}

// tree records every entry under root by relative path; the top-level
// lost+found of an ext4 volume (lvm) is not part of the image.
func tree(t testing.TB, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "lost+found" {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		e := entry{Mode: info.Mode(), UID: st.Uid, GID: st.Gid}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.Data, err = os.Readlink(path)
		case info.Mode().IsRegular():
			var b []byte
			b, err = os.ReadFile(path)
			e.Data = string(b)
		}
		out[rel] = e
		return err
	})
	if err != nil {
		t.Fatalf("read tree %s: %v", root, err)
	}
	return out
}

// sameTree fails t unless got equals want, with owners in got shifted by
// (du, dg).
func sameTree(t testing.TB, what string, want, got map[string]entry, du, dg uint32) {
	t.Helper()
	var problems []string
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			problems = append(problems, p+": missing")
			continue
		}
		w.UID += du
		w.GID += dg
		if p == "." {
			// A volume's root may keep its own permission bits' type only.
			g.Data, w.Data = "", ""
		}
		if g != w {
			problems = append(problems, fmt.Sprintf("%s: got mode %v owner %d:%d, want mode %v owner %d:%d (or content differs)", p, g.Mode, g.UID, g.GID, w.Mode, w.UID, w.GID))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			problems = append(problems, p+": unexpected")
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Errorf("%s differs:\n  %s", what, strings.Join(problems, "\n  "))
	}
}

// tarSource makes a tarball of the fixture with GNU tar and returns a
// Source unpacking it, as an image's rootfs tarball would be.
func tarSource(t testing.TB) (storage.Source, string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	fixture(t, src)
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if out, err := exec.Command("tar", "--numeric-owner", "-C", src, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	return storage.SourceFunc(func(ctx context.Context, dir string) error {
		out, err := exec.CommandContext(ctx, "tar", "--numeric-owner", "-xpf", tarball, "-C", dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("untar %s: %w: %s", tarball, err, out)
		}
		return nil
	}), src
}

// dirSource returns a Source copying a fixture directory.
func dirSource(t testing.TB) (storage.Source, string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	fixture(t, src)
	return storage.SourceFunc(func(ctx context.Context, dir string) error {
		out, err := exec.CommandContext(ctx, "cp", "-a", src+"/.", dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("copy %s: %w: %s", src, err, out)
		}
		return nil
	}), src
}

func golden(t testing.TB, d storage.Driver, id string, opts storage.GoldenOptions) (storage.Volume, string) {
	t.Helper()
	src, dir := tarSource(t)
	v, err := d.CreateGolden(context.Background(), id, src, opts)
	if err != nil {
		t.Fatalf("CreateGolden(%s): %v", id, err)
	}
	return v, dir
}

func clone(t testing.TB, d storage.Driver, parent, id string) storage.Volume {
	t.Helper()
	v, err := d.Clone(context.Background(), parent, id)
	if err != nil {
		t.Fatalf("Clone(%s, %s): %v", parent, id, err)
	}
	return v
}

func testGoldenFromTarball(t *testing.T, d storage.Driver) {
	v, src := golden(t, d, "img", storage.GoldenOptions{})
	if v.ID != "img" || v.Kind != storage.KindGolden || v.Parent != "" || v.Created.IsZero() {
		t.Errorf("CreateGolden returned %+v", v)
	}
	sameTree(t, "golden vs tarball", tree(t, src), tree(t, v.Rootfs), 0, 0)
	c := clone(t, d, "img", "c1")
	if c.Kind != storage.KindClone || c.Parent != "img" || c.Rootfs == v.Rootfs {
		t.Errorf("Clone returned %+v", c)
	}
	sameTree(t, "clone vs golden", tree(t, v.Rootfs), tree(t, c.Rootfs), 0, 0)
}

func testGoldenFromDirectory(t *testing.T, d storage.Driver) {
	src, dir := dirSource(t)
	v, err := d.CreateGolden(context.Background(), "img", src, storage.GoldenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, "golden vs directory", tree(t, dir), tree(t, v.Rootfs), 0, 0)
	c := clone(t, d, "img", "c1")
	sameTree(t, "clone vs golden", tree(t, v.Rootfs), tree(t, c.Rootfs), 0, 0)
}

func testCloneIsolation(t *testing.T, d storage.Driver) {
	g, _ := golden(t, d, "img", storage.GoldenOptions{})
	before := tree(t, g.Rootfs)
	a := clone(t, d, "img", "a")
	b := clone(t, d, "img", "b")
	if err := os.WriteFile(filepath.Join(a.Rootfs, "etc/hostname"), []byte("a\n"), 0o644); err != nil {
		t.Fatalf("write in clone: %v", err)
	}
	if err := os.WriteFile(filepath.Join(a.Rootfs, "new"), []byte("new\n"), 0o644); err != nil {
		t.Fatalf("write in clone: %v", err)
	}
	if err := os.Remove(filepath.Join(a.Rootfs, "bin/su")); err != nil {
		t.Fatalf("remove in clone: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(a.Rootfs, "etc/hostname")); string(b) != "a\n" {
		t.Errorf("clone a reads back %q", b)
	}
	sameTree(t, "golden after writes in a clone", before, tree(t, g.Rootfs), 0, 0)
	sameTree(t, "clone b after writes in clone a", before, tree(t, b.Rootfs), 0, 0)
}

func testGoldenReadOnly(t *testing.T, d storage.Driver) {
	g, _ := golden(t, d, "img", storage.GoldenOptions{})
	if err := os.WriteFile(filepath.Join(g.Rootfs, "etc/hostname"), []byte("changed\n"), 0o644); err == nil {
		t.Error("writing into a golden volume succeeded")
	}
	if err := os.WriteFile(filepath.Join(g.Rootfs, "new"), nil, 0o644); err == nil {
		t.Error("creating a file in a golden volume succeeded")
	}
	// Still read-only once fetched again.
	g2, err := d.Get(context.Background(), "img")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(g2.Rootfs, "newdir"), 0o755); err == nil {
		t.Error("creating a directory in a golden volume succeeded")
	}
}

func testDestroyInUse(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	golden(t, d, "img", storage.GoldenOptions{})
	clone(t, d, "img", "c1")
	clone(t, d, "img", "c2")
	if err := d.Destroy(ctx, "img"); !errors.Is(err, storage.ErrInUse) {
		t.Fatalf("Destroy(golden with clones) = %v, want ErrInUse", err)
	}
	if _, err := d.Get(ctx, "img"); err != nil {
		t.Fatalf("golden gone after a refused destroy: %v", err)
	}
	for _, id := range []string{"c1", "c2"} {
		if err := d.Destroy(ctx, id); err != nil {
			t.Fatalf("Destroy(%s): %v", id, err)
		}
	}
	if err := d.Destroy(ctx, "img"); err != nil {
		t.Fatalf("Destroy(golden without clones): %v", err)
	}
	if _, err := d.Get(ctx, "img"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get after Destroy = %v, want ErrNotFound", err)
	}
	// The id is free again.
	golden(t, d, "img", storage.GoldenOptions{})
}

func testGetWalkUsage(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	g, _ := golden(t, d, "img", storage.GoldenOptions{})
	c := clone(t, d, "img", "c1")
	got, err := d.Get(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.Kind != c.Kind || got.Parent != c.Parent || got.Rootfs != c.Rootfs || !got.Created.Equal(c.Created) {
		t.Errorf("Get = %+v, Clone returned %+v", got, c)
	}
	if _, err := os.Stat(filepath.Join(got.Rootfs, "etc/hostname")); err != nil {
		t.Errorf("Get's rootfs is not usable: %v", err)
	}
	clone(t, d, "img", "c0")
	var seen []string
	if err := d.Walk(ctx, func(v storage.Volume) error {
		seen = append(seen, string(v.Kind)+":"+v.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen[0] != "golden:img" {
		t.Errorf("Walk saw %v, want golden:img first, then the two clones", seen)
	}
	stop := errors.New("stop")
	if err := d.Walk(ctx, func(storage.Volume) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Walk did not return fn's error: %v", err)
	}
	gu, err := d.Usage(ctx, "img")
	if err != nil {
		t.Fatal(err)
	}
	if gu.Bytes < 64<<10 {
		t.Errorf("Usage(golden) = %d bytes, want at least the 64 KiB it holds", gu.Bytes)
	}
	// A clone's usage grows with what it writes (ZFS accounts lazily: poll).
	data := bytes.Repeat([]byte{0xa5}, 4<<20)
	if err := os.WriteFile(filepath.Join(c.Rootfs, "big"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	var cu storage.Usage
	for deadline := time.Now().Add(20 * time.Second); ; {
		if cu, err = d.Usage(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if cu.Bytes >= 4<<20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
		unix.Sync()
	}
	if cu.Bytes < 4<<20 {
		t.Errorf("Usage(clone) = %d bytes after writing 4 MiB into it", cu.Bytes)
	}
	_ = g
}

func testSweepInterruptedDestroy(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	golden(t, d, "img", storage.GoldenOptions{})
	clone(t, d, "img", "c1")
	if err := storage.InterruptDestroy(ctx, d, "c1"); err != nil {
		t.Fatal(err)
	}
	left, err := storage.Leftovers(d)
	if err != nil || len(left) != 1 || !strings.HasPrefix(left[0], ".trash-c1-") {
		t.Fatalf("after an interrupted destroy: leftovers %v, %v; want one .trash-c1-*", left, err)
	}
	if _, err := d.Get(ctx, "c1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(half-destroyed clone) = %v, want ErrNotFound", err)
	}
	if err := d.Sweep(ctx); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if left, err := storage.Leftovers(d); err != nil || len(left) != 0 {
		t.Fatalf("after Sweep: leftovers %v, %v", left, err)
	}
	// The golden volume has no clone left: it can go.
	if err := d.Destroy(ctx, "img"); err != nil {
		t.Fatalf("Destroy(golden) after sweeping its clone: %v", err)
	}
}

func testFailedCreate(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	boom := errors.New("unpack failed")
	_, err := d.CreateGolden(ctx, "img", storage.SourceFunc(func(_ context.Context, dir string) error {
		if err := os.WriteFile(filepath.Join(dir, "partial"), []byte("x"), 0o644); err != nil {
			return err
		}
		return boom
	}), storage.GoldenOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("CreateGolden with a failing source = %v, want the source's error", err)
	}
	if _, err := d.Get(ctx, "img"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get after a failed create = %v, want ErrNotFound", err)
	}
	if left, err := storage.Leftovers(d); err != nil || len(left) != 0 {
		t.Errorf("a failed create left %v, %v", left, err)
	}
	golden(t, d, "img", storage.GoldenOptions{})
}

func testErrors(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	golden(t, d, "img", storage.GoldenOptions{})
	clone(t, d, "img", "c1")
	src, _ := dirSource(t)
	if _, err := d.CreateGolden(ctx, "img", src, storage.GoldenOptions{}); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateGolden(existing) = %v, want ErrExists", err)
	}
	if _, err := d.CreateGolden(ctx, "c1", src, storage.GoldenOptions{}); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateGolden(id of a clone) = %v, want ErrExists", err)
	}
	if _, err := d.Clone(ctx, "img", "c1"); !errors.Is(err, storage.ErrExists) {
		t.Errorf("Clone(existing) = %v, want ErrExists", err)
	}
	if _, err := d.Clone(ctx, "img", "img"); !errors.Is(err, storage.ErrExists) {
		t.Errorf("Clone(onto its golden) = %v, want ErrExists", err)
	}
	if _, err := d.Clone(ctx, "nope", "c2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Clone(missing golden) = %v, want ErrNotFound", err)
	}
	if _, err := d.Clone(ctx, "c1", "c2"); err == nil {
		t.Error("Clone(from a clone) succeeded")
	}
	if _, err := d.Get(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
	if err := d.Destroy(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Destroy(missing) = %v, want ErrNotFound", err)
	}
	if _, err := d.Usage(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Usage(missing) = %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "..", "a/b", ".tmp-x", strings.Repeat("x", 129)} {
		if _, err := d.Clone(ctx, "img", bad); err == nil {
			t.Errorf("Clone(id %q) = %v, want an invalid-id error", bad, err)
		}
	}
	if left, err := storage.Leftovers(d); err != nil || len(left) != 0 {
		t.Errorf("failed calls left %v, %v", left, err)
	}
}
