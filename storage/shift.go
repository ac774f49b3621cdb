package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/stintdev/stint/internal/idmap"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/plural"
)

// shiftTree moves every owner under root from container ids to host ids of
// m (uid → HostUID+uid, gid → HostGID+gid). chown clears the setuid and
// setgid bits, so the mode is restored afterwards. Hard links are shifted
// once. POSIX ACLs (system.posix_acl_access and _default) have their named
// user and group entries shifted too. An id outside the map is an error:
// the container could not own it. File capabilities, which chown drops, are
// restored as capabilities of the container's root (v3, root id HostUID).
func shiftTree(root string, m idmap.Map) error {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", path)
		}
		if st.Nlink > 1 && !d.IsDir() {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		uid, uok := m.ShiftUID(st.Uid)
		gid, gok := m.ShiftGID(st.Gid)
		if !uok || !gok {
			return fmt.Errorf("%s: owner %d:%d is outside the container's %d ids", path, st.Uid, st.Gid, m.Size)
		}
		// chown drops file capabilities: read them first, put them back
		// as the container's root's (v3, root id HostUID).
		fcaps, err := readFcaps(path, info.Mode())
		if err != nil {
			return err
		}
		if err := os.Lchown(path, int(uid), int(gid)); err != nil {
			return err
		}
		if fcaps != nil {
			if err := writeFcaps(path, fcaps, m.HostUID); err != nil {
				return err
			}
		}
		if info.Mode()&os.ModeSymlink == 0 && st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			if err := unix.Chmod(path, st.Mode&0o7777); err != nil {
				return fmt.Errorf("restore mode of %s: %w", path, err)
			}
		}
		if info.Mode()&os.ModeSymlink == 0 {
			for _, name := range aclXattrs {
				if err := shiftACL(path, name, m); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

var aclXattrs = []string{"system.posix_acl_access", "system.posix_acl_default"}

// ACL entry tags whose id names a user or a group (linux/posix_acl.h).
const (
	aclUser  = 0x02
	aclGroup = 0x08
)

// shiftACL shifts the named entries of one POSIX ACL xattr of path: a
// 4-byte version header, then 8-byte entries (tag u16, perm u16, id u32),
// little-endian.
func shiftACL(path, name string, m idmap.Map) error {
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(path, name, buf)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	if errors.Is(err, unix.ERANGE) {
		if n, err = unix.Lgetxattr(path, name, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Lgetxattr(path, name, buf)
		}
	}
	if err != nil {
		return fmt.Errorf("read %s of %s: %w", name, path, err)
	}
	acl := buf[:n]
	if len(acl) < 4 || (len(acl)-4)%8 != 0 {
		return fmt.Errorf("%s of %s: malformed ACL (%s)", name, path, plural.N(len(acl), "byte", "bytes"))
	}
	changed := false
	for off := 4; off < len(acl); off += 8 {
		tag := binary.LittleEndian.Uint16(acl[off:])
		id := binary.LittleEndian.Uint32(acl[off+4:])
		var (
			to uint32
			ok bool
		)
		switch tag {
		case aclUser:
			to, ok = m.ShiftUID(id)
		case aclGroup:
			to, ok = m.ShiftGID(id)
		default:
			continue
		}
		if !ok {
			return fmt.Errorf("%s of %s: id %d is outside the container's %d ids", name, path, id, m.Size)
		}
		binary.LittleEndian.PutUint32(acl[off+4:], to)
		changed = true
	}
	if !changed {
		return nil
	}
	if err := unix.Lsetxattr(path, name, acl, 0); err != nil {
		return fmt.Errorf("write %s of %s: %w", name, path, err)
	}
	return nil
}

const capXattr = "security.capability"

// readFcaps returns a regular file's security.capability xattr, or nil.
func readFcaps(path string, mode os.FileMode) ([]byte, error) {
	if !mode.IsRegular() {
		return nil, nil
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(path, capXattr, buf)
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s of %s: %w", capXattr, path, err)
	}
	return buf[:n], nil
}

// writeFcaps writes caps back as a v3 capability owned by root id rootid
// (vfs_ns_cap_data: magic_etc, 2 × (permitted, inheritable), rootid).
func writeFcaps(path string, caps []byte, rootid uint32) error {
	if len(caps) < 20 {
		return fmt.Errorf("%s of %s: unsupported capability format (%s)", capXattr, path, plural.N(len(caps), "byte", "bytes"))
	}
	v3 := make([]byte, 24)
	magic := binary.LittleEndian.Uint32(caps)
	const revMask, rev3, effective = 0xff000000, 0x03000000, 0x000001
	binary.LittleEndian.PutUint32(v3, rev3|magic&effective&^revMask)
	copy(v3[4:20], caps[4:20])
	binary.LittleEndian.PutUint32(v3[20:], rootid)
	if err := unix.Lsetxattr(path, capXattr, v3, 0); err != nil {
		return fmt.Errorf("write %s of %s: %w", capXattr, path, err)
	}
	return nil
}
