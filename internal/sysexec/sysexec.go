// Package sysexec runs the external tools stint relies on (btrfs, zfs, lvm,
// debootstrap, mkfs, losetup) through one door: a context, LC_ALL=C, and a
// typed error carrying the command, its exit code and its stderr, so callers
// never match error strings.
package sysexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Error is a failed external command.
type Error struct {
	Cmd      []string // argv
	ExitCode int      // -1 when the command did not run or was killed by a signal
	Stderr   string   // trimmed
	Err      error    // the underlying error from os/exec
}

func (e *Error) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s: %s", strings.Join(e.Cmd, " "), msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Run runs name with args and returns its stdout. On failure the error is an
// *Error.
func Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return RunEnv(ctx, nil, name, args...)
}

// RunEnv is Run with extra environment entries (KEY=VALUE) on top of a
// minimal, locale-free environment.
func RunEnv(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append([]string{"LC_ALL=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		return stdout.Bytes(), &Error{Cmd: append([]string{name}, args...), ExitCode: code, Stderr: stderr.String(), Err: err}
	}
	return stdout.Bytes(), nil
}
