package container

import (
	"fmt"
	"io"
	"syscall"
)

// ExecOptions describe one command run inside a container.
type ExecOptions struct {
	Argv []string
	// Env is the command's whole environment (KEY=VALUE); the runtime adds
	// nothing and keeps nothing of the host's.
	Env []string
	UID int
	GID int
	// Groups are supplementary groups. lxcrt cannot apply them yet: go-lxc
	// never sets LXC_ATTACH_SETGROUPS, so the command runs with none.
	Groups []int
	Cwd    string // "" = /
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// TTY, when set, is a terminal the command gets as its controlling
	// terminal (stdin, stdout and stderr all go to it).
	TTY bool
}

// ExitStatus is how a command ended.
type ExitStatus struct {
	Code   int            `json:"code"`             // the exit code; 128+signal when signalled
	Signal syscall.Signal `json:"signal,omitempty"` // the signal that killed it, or 0
	OOM    bool           `json:"oom,omitempty"`    // the container's memory limit killed it
}

// Success reports whether the command exited 0.
func (s ExitStatus) Success() bool { return s.Code == 0 && s.Signal == 0 }

// String describes the status for a summary line.
func (s ExitStatus) String() string {
	switch {
	case s.OOM:
		return "killed by the OOM killer"
	case s.Signal != 0:
		return fmt.Sprintf("killed by signal %d (%s)", int(s.Signal), s.Signal)
	default:
		return fmt.Sprintf("exit %d", s.Code)
	}
}

// StatusFromWait converts a wait(2) status.
func StatusFromWait(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}
