package storage

import (
	"context"
	"errors"
	"testing"
)

// Pure bookkeeping, no root needed.

func TestValidID(t *testing.T) {
	for id, ok := range map[string]bool{
		"img": true, "golden-0123abcd-100000-100000-65536": true, "a.b_c-d": true, "-x": true,
		"": false, ".": false, "..": false, ".tmp-x": false, ".trash-x-1": false, "a/b": false, "a b": false,
		string(make([]byte, 129)): false,
	} {
		if got := validID.MatchString(id); got != ok {
			t.Errorf("validID(%q) = %v, want %v", id, got, ok)
		}
	}
}

func TestPoolPath(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Driver: "overlay", Root: "/r"}, "/r/storage"},
		{Config{Driver: "btrfs", Root: "/r"}, "/r/storage"},
		{Config{Driver: "btrfs", Root: "/r", Size: 1 << 30}, "/r/storage/btrfs"},
		{Config{Driver: "btrfs", Root: "/r", Size: 1 << 30, Path: "/p"}, "/p"},
		{Config{Driver: "dir", Root: "/r", Path: "/p"}, "/p"},
	} {
		if got := PoolPath(tc.cfg); got != tc.want {
			t.Errorf("PoolPath(%+v) = %q, want %q", tc.cfg, got, tc.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Config{Driver: "nope", Root: t.TempDir()}); err == nil {
		t.Error("Open(unknown driver) succeeded")
	}
	if _, err := Open(ctx, Config{Driver: "zfs", Root: t.TempDir()}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Open(zfs without a dataset) = %v, want ErrUnsupported", err)
	}
	if _, err := Open(ctx, Config{Driver: "lvm", Root: t.TempDir()}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Open(lvm without a vg) = %v, want ErrUnsupported", err)
	}
	if fs, _ := fsType(t.TempDir()); fs != "btrfs" {
		_, err := Open(ctx, Config{Driver: "btrfs", Root: t.TempDir()})
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("Open(btrfs on %s) = %v, want ErrUnsupported", fs, err)
		}
	}
}

func TestThinPoolAttr(t *testing.T) {
	for attr, ok := range map[string]bool{"  twi-a-tz--\n": true, "Vwi-a-tz--": false, "": false, "-wi-a-----": false} {
		if got := containsThinPoolAttr(attr); got != ok {
			t.Errorf("containsThinPoolAttr(%q) = %v, want %v", attr, got, ok)
		}
	}
}
