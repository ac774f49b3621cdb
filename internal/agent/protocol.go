// Package agent is stint-agent's protocol and main loop. stint-agent is a
// small static program that is PID 1 of a job's container on the fast path
// (as init.lxc is under lxc-execute): it runs the job's lines itself, one
// after another, so that no attach helper, no setns and no second start of
// the stint binary stand between two lines.
//
// # Protocol
//
// The agent inherits one end of a SOCK_SEQPACKET unix socket as ControlFD
// across the container's start (Socketpair makes the pair). Each message
// is one JSON object, whole; a request may carry descriptors (SCM_RIGHTS).
// The runtime (Client) speaks first only after the agent's Ready; every
// request then gets exactly one report, in order:
//
//  1. Start: the agent marks every descriptor but stdio and ControlFD
//     close-on-exec, and reports Ready with its pid.
//  2. OpRun, with three descriptors (the command's stdin, stdout and
//     stderr, as the runtime made them: exec's pipes, a file, /dev/null):
//     start Argv with exactly Env (nothing added, nothing kept), as UID,
//     GID and Groups, in Cwd, in a session of its own (no controlling
//     terminal), with those three as its only descriptors; the agent closes
//     its copies at once, so the runtime sees EOF on the command's output
//     when the command (and whatever inherited it) is done, as with an
//     attach. One command at a time. Reported: Exited with the wait(2)
//     status, or Failed when it could not be started. The agent reaps every
//     orphan meanwhile, as PID 1 must. An OOM kill shows as SIGKILL; the
//     runtime tells it apart by the container's memory cgroup.
//  3. OpReap: kill every other process of the container (kill(-1) from
//     PID 1 reaches exactly its pid namespace) and report Reaped once all
//     are waited for.
//  4. OpExit: reap as OpReap, report Bye, and exit 0. PID 1's exit stops
//     the container.
//  5. The socket's end (the runtime is gone: stint exited keeping the job's
//     container, or was killed): the agent serves on as a plain init,
//     reaping orphans, and the container runs on until stopped (Stop,
//     stint gc), as it would under LXC's init.lxc.
package agent

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// ControlFD is the agent's end of its socket, inherited.
const ControlFD = 3

// Op is a request's operation.
type Op string

// Operations.
const (
	OpRun  Op = "run"
	OpReap Op = "reap"
	OpExit Op = "exit"
)

// Kind is a report's kind.
type Kind string

// Report kinds.
const (
	KindReady  Kind = "ready"  // once, first: the agent serves
	KindExited Kind = "exited" // OpRun: the command ended; Status
	KindFailed Kind = "failed" // OpRun: the command could not be started; Error
	KindReaped Kind = "reaped" // OpReap: nothing but the agent runs; Reaped
	KindBye    Kind = "bye"    // OpExit: the agent exits now
	KindError  Kind = "error"  // a request the agent did not understand; Error
)

// Command is one command the agent runs.
type Command struct {
	Argv   []string `json:"argv"`
	Env    []string `json:"env"`
	UID    int      `json:"uid"`
	GID    int      `json:"gid"`
	Groups []int    `json:"groups,omitempty"`
	Cwd    string   `json:"cwd,omitempty"` // "" = /
}

// Request is one message to the agent.
type Request struct {
	Op Op `json:"op"`
	Command
}

// Report is one message from the agent.
type Report struct {
	Kind   Kind   `json:"kind"`
	Pid    int    `json:"pid,omitempty"`    // KindReady: the agent's pid (1 in its container)
	Status int    `json:"status"`           // KindExited: the wait(2) status
	Reaped int    `json:"reaped,omitempty"` // KindReaped, KindBye: processes killed and waited for
	Error  string `json:"error,omitempty"`  // KindFailed, KindError
}

// Errors of the client.
var (
	// ErrGone means the agent's reports ended: it exited, or its container
	// stopped (a timeout, a Stop, a kill of PID 1).
	ErrGone = errors.New("agent is gone")
	// ErrProtocol means a report was not the one the request expects.
	ErrProtocol = errors.New("agent protocol error")
)

// StartError is a command the agent could not start (no such file, a
// working directory that doesn't exist, a uid the kernel refused).
type StartError struct {
	Argv0 string
	Msg   string // the agent's own words
}

func (e *StartError) Error() string {
	return fmt.Sprintf("start %s in the container: %s", e.Argv0, e.Msg)
}

// Client is the runtime's end of the protocol. Its methods block until the
// agent reports; to give up on a command, stop the container (the socket
// then ends: ErrGone). It is safe for concurrent use, one request at a
// time.
type Client struct {
	mu   sync.Mutex
	sock *os.File
	c    *conn
}

// NewClient speaks to an agent through sock, the runtime's end of
// Socketpair. The Client owns sock.
func NewClient(sock *os.File) *Client {
	return &Client{sock: sock, c: newConn(int(sock.Fd()))}
}

// Ready waits for the agent's first report and returns its pid.
func (c *Client) Ready() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.read(KindReady)
	if err != nil {
		return 0, err
	}
	return r.Pid, nil
}

// Run runs cmd with stdin, stdout and stderr and returns how it ended. A
// command the agent could not start is a *StartError. The caller keeps its
// three files (the agent has copies until the command ends).
func (c *Client) Run(cmd Command, stdin, stdout, stderr *os.File) (syscall.WaitStatus, error) {
	if len(cmd.Argv) == 0 {
		return 0, fmt.Errorf("agent run: no command")
	}
	if stdin == nil || stdout == nil || stderr == nil {
		return 0, fmt.Errorf("agent run %s: stdin, stdout and stderr are all needed", cmd.Argv[0])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.send(Request{Op: OpRun, Command: cmd}, int(stdin.Fd()), int(stdout.Fd()), int(stderr.Fd())); err != nil {
		return 0, err
	}
	r, err := c.read(KindExited, KindFailed)
	if err != nil {
		return 0, err
	}
	if r.Kind == KindFailed {
		return 0, &StartError{Argv0: cmd.Argv[0], Msg: r.Error}
	}
	return syscall.WaitStatus(r.Status), nil
}

// Reap kills every process of the container but the agent and waits for
// them; it returns how many there were.
func (c *Client) Reap() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.send(Request{Op: OpReap}); err != nil {
		return 0, err
	}
	r, err := c.read(KindReaped)
	return r.Reaped, err
}

// Exit asks the agent to kill everything and exit (which stops the
// container), waits for its Bye and closes the socket.
func (c *Client) Exit() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.send(Request{Op: OpExit})
	if err == nil {
		_, err = c.read(KindBye)
	}
	if cerr := c.sock.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("agent socket: %w", cerr)
	}
	return err
}

// Close closes the socket without a word: the agent serves on as a plain
// init (the container keeps running).
func (c *Client) Close() error { return c.sock.Close() }

func (c *Client) send(r Request, fds ...int) error {
	if err := c.c.send(r, fds...); err != nil {
		return fmt.Errorf("agent request %s: %w", r.Op, err)
	}
	return nil
}

func (c *Client) read(want ...Kind) (Report, error) {
	var r Report
	fds, err := c.c.recv(&r)
	closeAll(fds) // reports carry none
	if err != nil {
		return r, fmt.Errorf("waiting for agent %s: %w", want[0], err)
	}
	for _, k := range want {
		if r.Kind == k {
			return r, nil
		}
	}
	if r.Kind == KindError {
		return r, fmt.Errorf("agent: %w: %s", ErrProtocol, r.Error)
	}
	return r, fmt.Errorf("agent reported %q, want %q: %w", r.Kind, want[0], ErrProtocol)
}
