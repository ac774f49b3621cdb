package storagetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/storage"
	"golang.org/x/sys/unix"
)

// The id-map shift, parallel use and remounting parts of the suite.

func testShift(t *testing.T, d storage.Driver) {
	m := idmap.Map{HostUID: 100000, HostGID: 200000, Size: 65536}
	g, src := golden(t, d, "img", storage.GoldenOptions{Shift: &m})
	got := tree(t, g.Rootfs)
	sameTree(t, "shifted golden", tree(t, src), got, 100000, 200000)
	if e := got["bin/su"]; e.Mode&fs.ModeSetuid == 0 || e.UID != 100000 {
		t.Errorf("bin/su after shift: %+v, want setuid kept and owner 100000", e)
	}
	if e := got["var/mail"]; e.Mode&fs.ModeSetgid == 0 || e.GID != 200008 {
		t.Errorf("var/mail after shift: %+v, want setgid kept and group 200008", e)
	}
	if e := got["home/user/notes"]; e.UID != 101000 || e.GID != 201000 {
		t.Errorf("home/user/notes after shift: %+v, want 101000:201000", e)
	}
	c := clone(t, d, "img", "c1")
	sameTree(t, "clone of a shifted golden", got, tree(t, c.Rootfs), 0, 0)

	// An owner the map cannot hold fails the create, leaving nothing.
	small := idmap.Map{HostUID: 100000, HostGID: 100000, Size: 1000}
	if _, err := d.CreateGolden(context.Background(), "img2", mustTar(t), storage.GoldenOptions{Shift: &small}); err == nil {
		t.Error("CreateGolden shifted a uid 1000 file into a 1000-id map")
	}
	if left, err := storage.Leftovers(d); err != nil || len(left) != 0 {
		t.Errorf("a failed shift left %v, %v", left, err)
	}
}

func mustTar(t testing.TB) storage.Source {
	s, _ := tarSource(t)
	return s
}

func testCloseTwice(t *testing.T, d storage.Driver) {
	golden(t, d, "img", storage.GoldenOptions{})
	clone(t, d, "img", "c1")
	// Clean up while the driver is open; the suite's cleanup then finds a
	// closed driver and nothing to do.
	destroyAll(t, d)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func testParallel(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	g, _ := golden(t, d, "img", storage.GoldenOptions{})
	want := tree(t, g.Rootfs)
	clone(t, d, "img", "holder")
	const workers, rounds = 8, 3
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				id := fmt.Sprintf("w%d-r%d", w, r)
				v, err := d.Clone(ctx, "img", id)
				if err != nil {
					errs <- fmt.Errorf("clone %s: %w", id, err)
					return
				}
				if err := os.WriteFile(filepath.Join(v.Rootfs, "etc/hostname"), []byte(id), 0o644); err != nil {
					errs <- fmt.Errorf("write %s: %w", id, err)
				}
				if b, err := os.ReadFile(filepath.Join(v.Rootfs, "etc/hostname")); err != nil || string(b) != id {
					errs <- fmt.Errorf("clone %s reads %q, %v", id, b, err)
				}
				if err := d.Destroy(ctx, id); err != nil {
					errs <- fmt.Errorf("destroy %s: %w", id, err)
				}
			}
		}()
	}
	// Meanwhile the golden volume, held by clone "holder", is refused
	// destruction however the workers' clones come and go.
	for range 5 {
		if err := d.Destroy(ctx, "img"); !errors.Is(err, storage.ErrInUse) {
			t.Errorf("Destroy(golden) during parallel clones = %v, want ErrInUse", err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := d.Destroy(ctx, "holder"); err != nil {
		t.Fatal(err)
	}
	var left []string
	if err := d.Walk(ctx, func(v storage.Volume) error { left = append(left, v.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != "img" {
		t.Errorf("after parallel clone/destroy, volumes %v, want only img", left)
	}
	sameTree(t, "golden after parallel clones", want, tree(t, g.Rootfs), 0, 0)
}

// testGetRemounts unmounts the volumes' rootfs, as a reboot would, and
// expects Get to mount them again: the clone writable with its own
// changes, the golden read-only.
func testGetRemounts(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	g, _ := golden(t, d, "img", storage.GoldenOptions{})
	want := tree(t, g.Rootfs)
	c := clone(t, d, "img", "c1")
	if err := os.WriteFile(filepath.Join(c.Rootfs, "etc/hostname"), []byte("c1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	for _, dir := range []string{c.Rootfs, g.Rootfs} {
		for unix.Unmount(dir, 0) == nil {
		}
	}
	c2, err := d.Get(ctx, "c1")
	if err != nil {
		t.Fatalf("Get(clone) after unmount: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(c2.Rootfs, "etc/hostname")); err != nil || string(b) != "c1\n" {
		t.Errorf("clone after remount reads %q, %v; want its own write", b, err)
	}
	if err := os.WriteFile(filepath.Join(c2.Rootfs, "after"), nil, 0o644); err != nil {
		t.Errorf("clone not writable after remount: %v", err)
	}
	g2, err := d.Get(ctx, "img")
	if err != nil {
		t.Fatalf("Get(golden) after unmount: %v", err)
	}
	sameTree(t, "golden after remount", want, tree(t, g2.Rootfs), 0, 0)
	if err := os.WriteFile(filepath.Join(g2.Rootfs, "new"), nil, 0o644); err == nil {
		t.Error("golden writable after remount")
	}
}

// acl encodes a POSIX ACL xattr: version 2, then (tag, perm, id) entries.
func acl(entries ...[3]uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

// ACL tags (linux/posix_acl.h) and the "no id" value.
const (
	tagUserObj, tagUser, tagGroupObj, tagGroup, tagMask, tagOther = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
	noID                                                          = 0xffffffff
)

// testShiftACL: named users and groups in access and default ACLs are
// shifted with the owners, and file capabilities survive the chown as the
// container root's.
func testShiftACL(t *testing.T, d storage.Driver) {
	src, dir := dirSource(t)
	access := acl([3]uint32{tagUserObj, 6, noID}, [3]uint32{tagUser, 4, 1000}, [3]uint32{tagGroupObj, 4, noID},
		[3]uint32{tagGroup, 4, 8}, [3]uint32{tagMask, 4, noID}, [3]uint32{tagOther, 0, noID})
	if err := unix.Lsetxattr(filepath.Join(dir, "home/user/notes"), "system.posix_acl_access", access, 0); err != nil {
		t.Fatalf("set ACL on the fixture: %v", err)
	}
	if err := unix.Lsetxattr(filepath.Join(dir, "home/user"), "system.posix_acl_default", access, 0); err != nil {
		t.Fatalf("set default ACL on the fixture: %v", err)
	}
	// cap_net_raw (bit 13), permitted and effective, as Debian's ping has.
	v2 := binary.LittleEndian.AppendUint32(nil, 0x02000001)
	v2 = binary.LittleEndian.AppendUint32(v2, 1<<13)
	v2 = append(v2, make([]byte, 12)...)
	if err := unix.Lsetxattr(filepath.Join(dir, "bin/tool"), "security.capability", v2, 0); err != nil {
		t.Fatalf("set file capability on the fixture: %v", err)
	}
	m := idmap.Map{HostUID: 100000, HostGID: 200000, Size: 65536}
	g, err := d.CreateGolden(context.Background(), "img", src, storage.GoldenOptions{Shift: &m})
	if err != nil {
		t.Fatal(err)
	}
	want := acl([3]uint32{tagUserObj, 6, noID}, [3]uint32{tagUser, 4, 101000}, [3]uint32{tagGroupObj, 4, noID},
		[3]uint32{tagGroup, 4, 200008}, [3]uint32{tagMask, 4, noID}, [3]uint32{tagOther, 0, noID})
	c := clone(t, d, "img", "c1")
	for _, root := range []string{g.Rootfs, c.Rootfs} {
		for _, x := range []struct{ path, name string }{{"home/user/notes", "system.posix_acl_access"}, {"home/user", "system.posix_acl_default"}} {
			buf := make([]byte, 256)
			n, err := unix.Lgetxattr(filepath.Join(root, x.path), x.name, buf)
			if err != nil {
				t.Errorf("%s %s: %v", x.path, x.name, err)
				continue
			}
			if !bytes.Equal(buf[:n], want) {
				t.Errorf("%s %s in %s = %x, want %x", x.path, x.name, root, buf[:n], want)
			}
		}
		wantCaps := binary.LittleEndian.AppendUint32(nil, 0x03000001)
		wantCaps = binary.LittleEndian.AppendUint32(wantCaps, 1<<13)
		wantCaps = append(wantCaps, make([]byte, 12)...)
		wantCaps = binary.LittleEndian.AppendUint32(wantCaps, 100000)
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(root, "bin/tool"), "security.capability", buf)
		if err != nil || !bytes.Equal(buf[:n], wantCaps) {
			t.Errorf("bin/tool security.capability in %s = %x, %v; want %x (v3, root 100000)", root, buf[:max(n, 0)], err, wantCaps)
		}
	}
}
