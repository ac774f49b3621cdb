package lxcrt

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/runner/container"
)

// Read-only bind mounts are made here, on the host, not by LXC. LXC makes a
// `bind,ro` entry inside the container's user namespace, where container
// root may simply remount it read-write (`mount -o remount,bind,rw`). A
// mount that is already read-only when the container's mount namespace is
// copied from the host's gets its read-only flag locked by the kernel
// (MNT_LOCK_READONLY), and a bind of it inside keeps the lock: the remount
// fails with EPERM. So stint binds each readonly source to a staging path
// of the container's, <lxcpath>/.staged-<name>/<n>, remounts that
// read-only, and points LXC's mount entry at it.

// stagedMount is one staged read-only bind: Source bound at Path.
type stagedMount struct {
	Source string `json:"source"`
	Path   string `json:"path"`
}

// stagedFile lists a container's staged mounts, so that Start can remake
// them after a reboot.
const stagedFile = "mounts.json"

// stageDir holds a container's staged mounts. A sibling of the container's
// directory, not inside it: LXC mounts from within the container's user
// namespace, whose root must traverse the path (0711), while the
// container's own directory stays private.
func (r *Runtime) stageDir(name string) string { return filepath.Join(r.lxcpath, ".staged-"+name) }

// planStaged returns mounts with each readonly bind's source replaced by
// its staging path, and the list of mounts to stage.
func (r *Runtime) planStaged(name string, mounts []container.Mount) ([]container.Mount, []stagedMount) {
	out := slices.Clone(mounts)
	var staged []stagedMount
	for i, m := range out {
		if !m.Readonly || (m.Type != "bind" && m.Type != "") {
			continue
		}
		p := filepath.Join(r.stageDir(name), strconv.Itoa(i))
		staged = append(staged, stagedMount{Source: m.Source, Path: p})
		out[i].Source = p
	}
	return out, staged
}

// stage makes (or remakes, where missing) the staged mounts of container
// name and records them.
func (r *Runtime) stage(name string, staged []stagedMount) error {
	if len(staged) == 0 {
		return nil
	}
	dir := r.stageDir(name)
	if err := os.Mkdir(dir, 0o711); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("stage mounts of container %s: %w", name, err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return fmt.Errorf("stage mounts of container %s: %w", name, err)
	}
	b, err := json.Marshal(staged)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, stagedFile), b, 0o600); err != nil {
		return fmt.Errorf("stage mounts of container %s: %w", name, err)
	}
	for _, s := range staged {
		if err := bindReadonly(s.Source, s.Path); err != nil {
			return fmt.Errorf("stage read-only mount %s of container %s: %w", s.Source, name, err)
		}
	}
	return nil
}

// restage remakes the staged mounts a container recorded, where missing
// (after a reboot, or after a Stop whose caller unstaged).
func (r *Runtime) restage(name string) error {
	b, err := os.ReadFile(filepath.Join(r.stageDir(name), stagedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("staged mounts of container %s: %w", name, err)
	}
	var staged []stagedMount
	if err := json.Unmarshal(b, &staged); err != nil {
		return fmt.Errorf("staged mounts of container %s: %w", name, err)
	}
	return r.stage(name, staged)
}

// unstage unmounts a container's staged mounts and removes its staging
// directory; a missing one is fine. It removes nothing while anything is
// still mounted there.
func (r *Runtime) unstage(name string) error {
	dir := r.stageDir(name)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unstage mounts of container %s: %w", name, err)
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		// Several times: a mount may be stacked on another (a crash between
		// two stagings).
		for i := 0; i < 8 && isMountPoint(p); i++ {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
				break
			}
		}
		if isMountPoint(p) {
			errs = append(errs, fmt.Errorf("unmount %s: still mounted", p))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("unstage mounts of container %s: %w", name, errors.Join(errs...))
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("unstage mounts of container %s: %w", name, err)
	}
	return nil
}

// bindReadonly binds src at dst (made as an empty file or directory) and
// remounts it read-only, keeping src's nosuid, nodev, noexec and atime
// flags: a bind remount sets them all, and dropping one would loosen what
// the host's mount enforces.
func bindReadonly(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	} else {
		// O_EXCL: opening a staged file (read-only) for writing would fail.
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if f != nil {
			f.Close()
		}
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(src, &sfs); err != nil {
		return fmt.Errorf("statfs %s: %w", src, err)
	}
	// Staged already on a restart: then only the remount, in case a crash
	// came between the two.
	if !isMountPoint(dst) {
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s at %s: %w", src, dst, err)
		}
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	for _, f := range [][2]uintptr{{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME}} {
		if uintptr(sfs.Flags)&f[0] != 0 {
			flags |= f[1]
		}
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		_ = unix.Unmount(dst, unix.MNT_DETACH)
		return fmt.Errorf("remount %s read-only: %w", dst, err)
	}
	return nil
}

// isMountPoint reports whether p is the root of a mount.
func isMountPoint(p string) bool {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &stx); err != nil {
		return false
	}
	return stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}
