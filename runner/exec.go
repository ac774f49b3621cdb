package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stintdev/stint/internal/hostuser"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
)

// ErrTimedOut is returned by Exec when the command outlived its timeout.
var ErrTimedOut = errors.New("timed out")

// Exec runs argv in a fresh ephemeral container made as for job (image,
// mounts, env, user, workdir, limits, network, timeout; its Run is ignored),
// with the caller's streams, and tears the container down afterwards, as
// lxc-start-ephemeral did. It returns how the command ended; a timeout or a
// cancelled ctx kills the whole container and returns an error.
func (r *Runner) Exec(ctx context.Context, job spec.Job, argv []string, stdio container.ExecOptions) (container.ExitStatus, error) {
	return r.exec(ctx, job, argv, stdio, nil)
}

// exec is Exec; with attach, the command gets a terminal opened in the
// container, whose master attach copies to and from (Host.ExecTerminal).
func (r *Runner) exec(ctx context.Context, job spec.Job, argv []string, stdio container.ExecOptions, attach AttachFunc) (st container.ExitStatus, err error) {
	if job.Name == "" {
		job.Name = "exec"
	}
	req := jobRequest(job, state.KindExec)
	if len(argv) > 0 {
		req.ReadAhead = programFiles(argv[0]) // not the shell: the command itself
	}
	r.session(ctx, req, func(inst *instance, launchErr error) bool {
		if launchErr != nil {
			err = launchErr
			return false
		}
		st, err = r.execIn(ctx, job, inst, argv, stdio, attach)
		return false
	}, func(_ bool, terr error, _ time.Time) {
		err = errors.Join(err, terr)
	})
	return st, err
}

// execIn runs argv in the started container of inst.
func (r *Runner) execIn(ctx context.Context, job spec.Job, inst *instance, argv []string, stdio container.ExecOptions, attach AttachFunc) (container.ExitStatus, error) {
	name := inst.req.Container
	runCtx := ctx
	if job.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, time.Duration(job.Timeout))
		defer cancel()
	}
	stopOnDone := context.AfterFunc(runCtx, func() { _ = r.Runtime.Stop(context.WithoutCancel(ctx), name) })
	defer stopOnDone()
	opts := stdio
	opts.Argv, opts.Env = argv, inst.env
	opts.UID, opts.GID, opts.Groups, opts.Cwd = inst.user.UID, inst.user.GID, inst.user.Groups, inst.req.Workdir
	if attach != nil {
		var hostUser *hostuser.User
		if inst.req.Dev != nil {
			hostUser = &inst.req.Dev.user
		}
		done, err := r.terminalFor(ctx, name, inst.user, inst.req.Privileged, hostUser, &opts, attach)
		if err != nil {
			return container.ExitStatus{}, fmt.Errorf("exec in %s: %w", name, err)
		}
		defer done()
	}
	st, err := r.Runtime.Exec(context.WithoutCancel(ctx), name, opts)
	switch {
	case ctx.Err() != nil:
		return st, fmt.Errorf("exec in %s: %w", name, context.Cause(ctx))
	case runCtx.Err() != nil:
		return st, fmt.Errorf("exec in %s: %w after %s", name, ErrTimedOut, time.Duration(job.Timeout))
	}
	return st, err
}
