// Package runner drives stint's containers: ephemeral jobs (clone, start,
// run, collect artifacts, tear down) through a small Runtime interface, so
// that nothing LXC-specific lives in the job lifecycle itself.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
)

// Runtime runs system containers. The local LXC runtime (runner/lxcrt) is
// the default; a remote LXD/Incus runtime can implement the same contract.
//
// # Lifecycle
//
//  1. Create defines container name from a root filesystem directory that
//     the caller owns (a mounted storage clone) and a Config. Nothing runs
//     yet. ErrExists if the name is taken.
//  2. Start boots the container's minimal PID 1 (not the image's init: a
//     job needs a namespace to exec into, not a booted distribution).
//  3. Exec runs a command inside the running container with its own
//     streams, environment, user and working directory, and reports how it
//     ended (exit code, signal, OOM kill). Several Execs may run at once.
//  4. Stop kills every process of the container (PID 1 included) and waits
//     until it is stopped; stopping a stopped container is harmless.
//  5. Destroy removes the container's definition (never its rootfs, which
//     belongs to storage). Destroying an absent container is harmless.
//
// State reports where a container is; List names every container the
// runtime holds, so a garbage collector can compare it with its records.
type Runtime interface {
	Create(ctx context.Context, name string, cfg Config) error
	Start(ctx context.Context, name string) error
	Exec(ctx context.Context, name string, opts ExecOptions) (ExitStatus, error)
	Stop(ctx context.Context, name string) error
	Destroy(ctx context.Context, name string) error
	State(ctx context.Context, name string) (State, error)
	List(ctx context.Context) ([]string, error)
}

// RootDirer is a Runtime that can show a running container's root as the
// container sees it, mounts included (lxcrt: /proc/<init pid>/root).
type RootDirer interface {
	RootDir(ctx context.Context, name string) (string, error)
}

// Freezer is a Runtime that can freeze every process of a running
// container (Stop still works on a frozen container).
type Freezer interface {
	Freeze(ctx context.Context, name string) error
}

// Sentinel errors, checked with errors.Is.
var (
	ErrNotFound = errors.New("container not found")
	ErrExists   = errors.New("container already exists")
)

// State is a container's state.
type State string

// Container states.
const (
	StateAbsent  State = "absent"
	StateStopped State = "stopped"
	StateRunning State = "running"
	StateOther   State = "other" // starting, stopping, frozen, ...
)

// Network modes a runtime understands itself; bridge mode is attached by the
// net package through Config.Network.Attach.
const (
	NetNone = "none"
	NetHost = "host"
)

// Config is what a container is made of, independent of the runtime.
type Config struct {
	Rootfs     string // a directory holding the root filesystem
	Hostname   string
	Privileged bool      // no user namespace
	IDMap      *IDMap    // the user namespace for unprivileged containers
	Mounts     []Mount   // applied in order
	Limits     Limits    // zero values mean unlimited
	Network    NetConfig // none (loopback only) by default
	// Raw runtime-specific keys (LXC keys for lxcrt), applied last, sorted.
	Raw map[string]string
	// LogFile is where the runtime writes its own log (for error reports).
	LogFile string
}

// IDMap maps container ids 0..Size-1 to host ids HostUID.., HostGID...
type IDMap struct {
	HostUID, HostGID, Size uint32
}

// Mount is a filesystem mounted into the container.
type Mount struct {
	Type     string // bind | tmpfs
	Source   string // bind: a host path
	Target   string // an absolute container path
	Readonly bool
	Size     int64 // tmpfs: bytes (0: the kernel's default)
}

// Limits are resource limits; zero means unlimited.
type Limits struct {
	Memory int64 // bytes
	CPUs   float64
	Pids   int64
}

// NetConfig is the container's network.
type NetConfig struct {
	Mode string // none (default) | host | anything Attach handles
	// Attach, when set, returns extra runtime keys for the network, in
	// order (the seam the net package fills for bridge mode: veth pair,
	// addresses, hosts and resolv.conf binds). Keys may repeat.
	Attach func(name string) ([][2]string, error)
}

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
