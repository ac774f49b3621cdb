package idmap

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// IdmappedMounts reports whether this host makes idmapped mounts
// (mount_setattr with MOUNT_ATTR_IDMAP, Linux 5.12+; tmpfs since 6.3), by
// really making one: a throwaway tmpfs that is never attached anywhere
// (fsopen/fsmount), a file in it owned by host root, a clone of the mount
// idmapped with a user namespace that maps id 0 to probeHostID, and the
// file's owner read back through the clone. Nothing is mounted in any
// namespace, so there is nothing to clean up after a crash; the helper
// process holding the user namespace dies with stint.
//
// ok is true only when the file read back as probeHostID. When the kernel
// refuses, ok is false and the error wraps errors.ErrUnsupported with the
// step and errno; any other error means the probe itself could not run
// (not root, no user namespaces). Needs root (CAP_SYS_ADMIN).
//
// A tmpfs answers for the kernel: filesystems gained idmapped mounts one
// by one (ext4, btrfs and xfs in 5.12, tmpfs in 6.3, NFS and most FUSE
// filesystems not at all), so "yes" here does not promise that a given
// project directory can be idmapped.
func IdmappedMounts() (ok bool, err error) {
	ns, stop, err := probeUserns()
	if err != nil {
		return false, err
	}
	defer stop()
	defer unix.Close(ns)

	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return false, probeErr("fsopen tmpfs", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return false, probeErr("fsconfig create tmpfs", err)
	}
	mnt, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return false, probeErr("fsmount tmpfs", err)
	}
	defer unix.Close(mnt)
	f, err := unix.Openat(mnt, "probe", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, fmt.Errorf("probe idmapped mounts: make a file on the throwaway tmpfs: %w", err)
	}
	unix.Close(f)

	tree, err := unix.OpenTree(mnt, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return false, probeErr("open_tree clone", err)
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns)}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return false, probeErr("mount_setattr MOUNT_ATTR_IDMAP on tmpfs", err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(tree, "probe", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, fmt.Errorf("probe idmapped mounts: stat through the idmapped mount: %w", err)
	}
	if st.Uid != probeHostID || st.Gid != probeHostID {
		return false, fmt.Errorf("probe idmapped mounts: a root file reads as %d:%d through the idmapped mount, want %d:%d: %w",
			st.Uid, st.Gid, probeHostID, probeHostID, errors.ErrUnsupported)
	}
	return true, nil
}

// probeHostID is the host id the probe maps id 0 to: any id will do (the
// namespace holds no process of ours that uses it).
const probeHostID = 100000

// probeErr names a step the kernel refused: "not supported" for the errnos
// of a kernel or filesystem without the feature, a plain error otherwise.
func probeErr(step string, err error) error {
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.EPERM) && os.Geteuid() == 0 {
		return fmt.Errorf("probe idmapped mounts: %s: %w (%w)", step, errors.ErrUnsupported, err)
	}
	return fmt.Errorf("probe idmapped mounts: %s: %w", step, err)
}

// probeUserns starts a short-lived process in a new user namespace that
// maps id 0 to probeHostID, and opens that namespace. stop ends the
// process. Go can't unshare a user namespace in a threaded process, hence
// the child; sleep ends on its own if stint dies without stopping it.
func probeUserns() (ns int, stop func(), err error) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return -1, nil, fmt.Errorf("probe idmapped mounts: a helper for the user namespace: %w", err)
	}
	cmd := exec.Command(sleep, "10")
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: probeHostID, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: probeHostID, Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return -1, nil, fmt.Errorf("probe idmapped mounts: start a process in a user namespace: %w", err)
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	ns, err = unix.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		stop()
		return -1, nil, fmt.Errorf("probe idmapped mounts: open the helper's user namespace: %w", err)
	}
	return ns, stop, nil
}
