// Package devpts opens a pseudo-terminal inside a running container's own
// devpts instance, from the host.
//
// Why: a terminal opened on the host's /dev/ptmx has its slave on the
// host's devpts, which a container (with its own devpts instance at
// /dev/pts, as LXC mounts one when lxc.pty.max > 0) cannot see: a command
// given that slave has a working terminal, but `tty` says "not a tty" and
// anything that looks its terminal up by name (ttyname(3), ssh, sudo,
// script) fails. A terminal from the container's own /dev/ptmx is
// /dev/pts/N inside, as lxc-attach's is.
//
// How: the container's /dev/ptmx is opened through its root as the host
// sees it (/proc/<init pid>/root) with openat2 RESOLVE_IN_ROOT, so a link
// the container put there resolves inside it; the result must be the
// multiplexer of a devpts filesystem (character device 5:2 on a filesystem
// of type DEVPTS_SUPER_MAGIC), or it is refused. The slave comes from
// TIOCGPTPEER on the master: by descriptor, never by a path the container
// could swap.
package devpts

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/rootfs"
)

// ErrNotPtmx means the container's /dev/ptmx is not a devpts multiplexer
// (a container without its own devpts: lxc.pty.max = 0, or something else
// put there).
var ErrNotPtmx = errors.New("not a devpts multiplexer")

// Pty is a terminal pair of a container's devpts instance.
type Pty struct {
	Master *os.File // stays on the host: stint copies bytes through it
	Slave  *os.File // the command's stdin, stdout, stderr and controlling terminal
	// Index is N of /dev/pts/N inside the container.
	Index int
}

// Close closes both ends.
func (p *Pty) Close() error {
	err := p.Slave.Close()
	if e := p.Master.Close(); err == nil {
		err = e
	}
	return err
}

// Open opens a new terminal in the devpts instance of the container whose
// root, as the host sees it, is rootDir (for a running LXC container:
// /proc/<init pid>/root). The slave is handed to uid:gid (host ids; -1
// leaves one alone) so that the command's user owns /dev/pts/N inside, as
// after a login.
func Open(rootDir string, uid, gid int) (*Pty, error) {
	root, err := rootfs.OpenRoot(rootDir)
	if err != nil {
		return nil, fmt.Errorf("container terminal: %w", err)
	}
	defer unix.Close(root)
	// Checked before it is opened: whatever the container put at
	// /dev/ptmx is never opened for reading or writing unless it is a
	// devpts multiplexer.
	pfd, err := rootfs.OpenIn(root, "/dev/ptmx", unix.O_PATH, 0)
	if err != nil {
		return nil, fmt.Errorf("container terminal: open /dev/ptmx in %s: %w", rootDir, err)
	}
	defer unix.Close(pfd)
	if err := isPtmx(pfd); err != nil {
		return nil, fmt.Errorf("container terminal: /dev/ptmx in %s: %w", rootDir, err)
	}
	mfd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", pfd), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("container terminal: open /dev/ptmx in %s: %w", rootDir, err)
	}
	return pair(mfd, uid, gid)
}

// OpenLocal opens a new terminal on this process's own /dev/ptmx (the
// host's devpts), for a command that is not in a local container: a
// remote runtime carries the bytes and the window size of this pair to
// the terminal its server opens for the command.
func OpenLocal() (*Pty, error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("terminal: open /dev/ptmx: %w", err)
	}
	return pair(mfd, -1, -1)
}

// pair unlocks the master mfd (closed on failure) and opens its slave,
// handed to uid:gid.
func pair(mfd, uid, gid int) (*Pty, error) {
	ok := false
	defer func() {
		if !ok {
			unix.Close(mfd)
		}
	}()
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("terminal: unlock: %w", err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		return nil, fmt.Errorf("terminal: number: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		return nil, fmt.Errorf("terminal: open the peer of /dev/pts/%d: %w", n, errno)
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchown(int(sfd), uid, gid); err != nil {
			unix.Close(int(sfd))
			return nil, fmt.Errorf("terminal: hand /dev/pts/%d to %d:%d: %w", n, uid, gid, err)
		}
	}
	ok = true
	return &Pty{
		Master: os.NewFile(uintptr(mfd), "ptmx"),
		Slave:  os.NewFile(sfd, fmt.Sprintf("/dev/pts/%d", n)),
		Index:  int(n),
	}, nil
}

// isPtmx checks that fd is character device 5:2 on a devpts filesystem.
func isPtmx(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 5 || unix.Minor(st.Rdev) != 2 ||
		sfs.Type != unix.DEVPTS_SUPER_MAGIC {
		return fmt.Errorf("%w (device %d:%d, filesystem type %#x)", ErrNotPtmx, unix.Major(st.Rdev), unix.Minor(st.Rdev), sfs.Type)
	}
	return nil
}
