package runner

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/state"
)

// removeCgroups removes the empty cgroups of container name. A cgroup
// still busy is left to the next gc's sweep, not an error of teardown.
func (r *Runner) removeCgroups(name string) error {
	cc, ok := r.Runtime.(container.CgroupCleaner)
	if !ok {
		return nil
	}
	if err := cc.RemoveCgroups(name); err != nil && !errors.Is(err, unix.EBUSY) {
		return err
	}
	return nil
}

// gcCgroups removes the cgroups that a teardown of this root had to leave
// (busy then) and that are empty now. The runtime names only its own
// containers' (lxcrt records them under its LXC path), so another stint
// root's containers are never touched, and no cgroup hierarchy is walked.
// Names with a record are their teardown's.
func (r *Runner) gcCgroups(_ context.Context, res *GCResult) {
	cc, ok := r.Runtime.(container.CgroupCleaner)
	if !ok {
		return
	}
	names, err := cc.CgroupNames()
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
		return
	}
	for _, name := range names {
		if _, err := r.State.Get(name); !errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err := cc.RemoveCgroups(name); err != nil {
			if !errors.Is(err, unix.EBUSY) { // busy: something still runs there
				res.Errors = append(res.Errors, err.Error())
			}
			continue
		}
		res.Removed = append(res.Removed, "cgroups of "+name)
	}
}
