package storage

import "testing"

// The ioctl numbers are the kernel's (linux/btrfs.h, as `gcc -E` prints
// them on x86-64 and arm64): a wrong size in a struct changes them.
func TestBtrfsIoctlNumbers(t *testing.T) {
	for name, c := range map[string]struct{ got, want uintptr }{
		"BTRFS_IOC_SUBVOL_CREATE":   {btrfsIocSubvolCreate, 0x5000940e},
		"BTRFS_IOC_SNAP_DESTROY":    {btrfsIocSnapDestroy, 0x5000940f},
		"BTRFS_IOC_SNAP_CREATE_V2":  {btrfsIocSnapCreateV2, 0x50009417},
		"BTRFS_IOC_SUBVOL_GETFLAGS": {btrfsIocSubvolGetflags, 0x80089419},
		"BTRFS_IOC_SUBVOL_SETFLAGS": {btrfsIocSubvolSetflags, 0x4008941a},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", name, c.got, c.want)
		}
	}
}

func TestSubvolumeNames(t *testing.T) {
	var args btrfsVolArgs
	for name, ok := range map[string]bool{"rootfs": true, "": false, ".": false, "..": false, string(make([]byte, btrfsPathNameMax+1)): false} {
		if err := setName(args.name[:], name); (err == nil) != ok {
			t.Errorf("setName(%q): %v", name, err)
		}
	}
}
