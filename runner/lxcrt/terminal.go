package lxcrt

import (
	"context"
	"fmt"
	"os"

	"github.com/stintdev/stint/internal/devpts"
	"github.com/stintdev/stint/runner/container"
)

var _ container.Terminaler = (*Runtime)(nil)

// OpenTerminal opens a pseudo-terminal in running container name's own
// devpts instance (LXC mounts one at /dev/pts: lxc.autodev and a
// lxc.pty.max above 0), through its init's root, so the command's terminal
// is /dev/pts/N inside and `tty`, ssh or sudo find it. A terminal of the
// host's devpts would work but have no name there ("not a tty").
func (r *Runtime) OpenTerminal(ctx context.Context, name string, uid, gid int) (master, slave *os.File, err error) {
	root, err := r.RootDir(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	p, err := devpts.Open(root, uid, gid)
	if err != nil {
		return nil, nil, fmt.Errorf("container %s: %w", name, err)
	}
	return p.Master, p.Slave, nil
}
