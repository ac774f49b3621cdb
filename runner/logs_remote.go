package runner

import (
	"context"
	"fmt"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/lxdrt"
	"github.com/stintdev/stint/runner/reconcile"
)

// RemoteConsole is a remote long-lived container's console log (what its
// PID 1 wrote), which LXD keeps on the instance's member: read through
// the remote's API, nothing of it is on this host.
type RemoteConsole struct {
	// Name is the container's name, SET.NAME.
	Name string
	rt   *lxdrt.Runtime
}

// consoleMax bounds one read of a console log.
const consoleMax = 64 << 20

// Read returns the console output as the remote hands it out: what was
// written since the previous read, by this or any other client (LXD 5.0
// passes a container's console output on once; what was unread when it
// stopped stays readable until it starts again); running says whether
// the container runs. An error wraps container.ErrNotFound once the
// instance is gone.
func (c *RemoteConsole) Read(ctx context.Context) (b []byte, running bool, err error) {
	b, running, err = c.rt.Console(ctx, c.Name, consoleMax)
	if err == nil && b == nil {
		err = fmt.Errorf("container %s: %w", c.Name, container.ErrNotFound)
	}
	return b, running, err
}

// RemoteConsole finds long-lived container name (SET.NAME, or NAME when
// only one set has it) among the remote's instances, as ConsoleLog does
// among the local records: ErrNoContainer or an *AmbiguousNameError when
// it can't.
func (h *Host) RemoteConsole(ctx context.Context, name string) (*RemoteConsole, error) {
	rt, err := h.runtime(ctx)
	if err != nil {
		return nil, err
	}
	lrt, ok := rt.(*lxdrt.Runtime)
	if !ok {
		return nil, fmt.Errorf("container %s: not on a remote: %w", name, ErrNoContainer)
	}
	set, specName, err := (&remoteLongLived{r: &Runner{Remote: h.opts.Remote}, rt: lrt}).find(ctx, name)
	if err != nil {
		return nil, err
	}
	return &RemoteConsole{Name: reconcile.RuntimeName(set, specName), rt: lrt}, nil
}
