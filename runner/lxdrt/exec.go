package lxdrt

import (
	"context"
	"fmt"
	"io"
	"strings"
	"syscall"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"

	"github.com/stintdev/stint/runner/container"
)

// Exec runs a command in the running instance through the exec API,
// streaming its output as it comes. The environment is exactly opts.Env:
// LXD adds variables of its own, so the command runs as
// `env -i -- ENV... ARGV...`. Cancelling ctx stops waiting (the caller
// stops the instance, which ends the command).
func (r *Runtime) Exec(ctx context.Context, name string, opts container.ExecOptions) (container.ExitStatus, error) {
	if len(opts.Argv) == 0 {
		return container.ExitStatus{}, r.unsupported(name, "exec without a command")
	}
	if strings.Contains(opts.Argv[0], "=") {
		return container.ExitStatus{}, r.unsupported(name, "a command named %q (env would take it for a variable)", opts.Argv[0])
	}
	inst, _, err := r.instance(name)
	if err != nil {
		return container.ExitStatus{}, err
	}
	if inst == nil {
		return container.ExitStatus{}, r.fail(name, "exec", container.ErrNotFound)
	}
	if inst.StatusCode != api.Running {
		return container.ExitStatus{}, r.fail(name, "exec", container.ErrNotRunning)
	}
	for _, kv := range opts.Env {
		if !strings.Contains(kv, "=") || strings.HasPrefix(kv, "=") {
			return container.ExitStatus{}, r.unsupported(name, "environment entry %q", kv)
		}
	}
	argv := append(append([]string{"env", "-i", "--"}, opts.Env...), opts.Argv...)
	cwd := opts.Cwd
	if cwd == "" {
		cwd = "/"
	}
	stdin := opts.Stdin
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	stdout, stderr := orDiscard(opts.Stdout), orDiscard(opts.Stderr)
	done := make(chan bool)
	req := api.InstanceExecPost{
		Command: argv, WaitForWS: true,
		User: uint32(opts.UID), Group: uint32(opts.GID), Cwd: cwd,
		// LXD puts a default PATH before running env; env -i drops it.
		Environment: map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}
	args := &lxd.InstanceExecArgs{Stdin: stdin, Stdout: stdout, Stderr: stderr, DataDone: done}
	stopResize := interactive(opts, &req, args) // terminal.go
	defer stopResize()
	op, err := r.c.ExecInstance(inst.Name, req, args)
	if err != nil {
		return container.ExitStatus{}, r.fail(name, "exec", err)
	}
	if err := op.WaitContext(ctx); err != nil {
		if ctx.Err() != nil {
			return container.ExitStatus{}, r.fail(name, "exec", ctx.Err())
		}
		return container.ExitStatus{}, r.fail(name, "exec", err)
	}
	select { // all output written before returning
	case <-done:
	case <-ctx.Done():
		return container.ExitStatus{}, r.fail(name, "exec", ctx.Err())
	}
	code, ok := op.Get().Metadata["return"].(float64)
	if !ok {
		return container.ExitStatus{}, r.fail(name, "exec", fmt.Errorf("no exit status in %v", op.Get().Metadata))
	}
	return statusOf(int(code)), nil
}

// statusOf reads LXD's exit code: a command killed by signal N reports
// 128+N, as a shell does (an `exit 137` looks the same).
func statusOf(code int) container.ExitStatus {
	if code > 128 && code < 128+65 {
		return container.ExitStatus{Code: code, Signal: syscall.Signal(code - 128)}
	}
	return container.ExitStatus{Code: code}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return nopCloser{w}
}

// nopCloser keeps the client from closing the caller's writer (it closes
// an io.WriteCloser when the stream ends).
type nopCloser struct{ io.Writer }
