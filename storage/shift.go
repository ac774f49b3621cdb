package storage

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/stintdev/stint/internal/idmap"
	"golang.org/x/sys/unix"
)

// shiftTree moves every owner under root from container ids to host ids of
// m (uid → HostUID+uid, gid → HostGID+gid). chown clears the setuid and
// setgid bits, so the mode is restored afterwards. Hard links are shifted
// once. An id outside the map is an error: the container could not own it.
//
// POSIX ACLs (system.posix_acl_access/default xattrs) are not shifted yet;
// named ACL entries keep their container ids.
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
		if err := os.Lchown(path, int(uid), int(gid)); err != nil {
			return err
		}
		if info.Mode()&os.ModeSymlink == 0 && st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
			if err := unix.Chmod(path, st.Mode&0o7777); err != nil {
				return fmt.Errorf("restore mode of %s: %w", path, err)
			}
		}
		return nil
	})
}
