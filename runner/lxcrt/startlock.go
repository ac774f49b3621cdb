package lxcrt

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A starting container's cgroups are empty for a moment: LXC makes them,
// then moves the monitor and the container's init into them. Removing the
// empty cgroups a teardown or a crash left (by name: this root's own
// containers only, but another root may use the same name for a
// long-lived container) must not hit that moment, or the start fails with
// "Failed to enter cgroup". So Start holds a host-wide lock shared while it
// runs, and a removal that finds cgroups to remove holds it exclusively:
// starts never wait for each other, only for such a removal (and it for
// the starts under way); the usual teardown finds none and takes no lock.
// Host-wide, as the cgroup names are: every stint root on the host shares it.
var startLockPath = "/run/stint/lxc-start.lock"

// hostLock takes the start lock (unix.LOCK_SH or unix.LOCK_EX) and returns
// its release.
func hostLock(how int) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(startLockPath), 0o755); err != nil {
		return nil, fmt.Errorf("start lock: %w", err)
	}
	f, err := os.OpenFile(startLockPath, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("start lock %s: %w", startLockPath, err)
	}
	// Unlock, not only close: a process liblxc forked meanwhile (attach's,
	// start's) holds a copy of the descriptor until it execs or exits.
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}
