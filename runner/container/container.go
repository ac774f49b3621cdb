// Package container is the contract between stint's job engine (runner) and
// the runtimes that run its containers: the local LXC runtime
// (runner/lxcrt) today, a remote LXD/Incus runtime next. It holds types and
// prose only; nothing here knows LXC, storage or networks.
//
// A runtime imports this package and internal helpers, never runner: the
// engine renders a job, a long-lived container or an exec into a Config,
// and each runtime renders a Config its own way.
package container

import (
	"context"
	"errors"
	"io/fs"
	"os"
)

// Runtime runs system containers.
//
// # Lifecycle
//
//  1. Create defines container name from a Config. The root filesystem is
//     described by Config.Root: a local directory the caller owns (a mounted
//     storage clone) for a runtime that runs on this host, or an image
//     reference for one that makes roots itself (see Capabilities). Nothing
//     runs yet. Create returns an error wrapping ErrExists if the name is
//     taken; a failed Create leaves nothing behind.
//  2. Start starts the container's PID 1 as Config.Init says: stint's
//     minimal init for a job (a namespace to exec into, not a booted
//     distribution), a given command, or the image's own init. Starting an
//     undefined container is ErrNotFound.
//  3. Exec runs a command inside the running container with its own
//     streams, environment, user and working directory, and reports how it
//     ended (exit code, signal, OOM kill). Several Execs may run at once.
//     Exec on a container that is not running is ErrNotRunning. A command
//     that ran and failed is not an error: its ExitStatus says how it ended.
//     Cancelling ctx stops waiting for the command; the caller stops the
//     container to end it for sure.
//  4. Stop kills every process of the container (PID 1 included, no grace:
//     a job's container is disposable) and waits until it is stopped. Any
//     running Exec then returns. Stopping a stopped or absent container is
//     harmless.
//  5. Destroy stops the container and removes its definition and whatever
//     the runtime made for it. It never removes a root directory it was
//     given (that belongs to storage). Destroying an absent container is
//     harmless, so a teardown may be retried after a crash.
//
// State reports where a container is (StateAbsent for one never created or
// destroyed, never an error); List names every container the runtime holds,
// so a garbage collector can compare them with its records. A runtime is
// safe for concurrent use on different containers.
//
// Optional abilities are separate small interfaces found by type assertion:
// Capable, RootDirer, FileReader, Freezer, ConsoleLogger, CgroupCleaner.
type Runtime interface {
	Create(ctx context.Context, name string, cfg Config) error
	Start(ctx context.Context, name string) error
	Exec(ctx context.Context, name string, opts ExecOptions) (ExitStatus, error)
	Stop(ctx context.Context, name string) error
	Destroy(ctx context.Context, name string) error
	State(ctx context.Context, name string) (State, error)
	List(ctx context.Context) ([]string, error)
}

// Sentinel errors, checked with errors.Is; a runtime wraps them with the
// container's name.
var (
	// ErrNotFound: the container is not defined.
	ErrNotFound = errors.New("container not found")
	// ErrExists: Create of a name that is taken.
	ErrExists = errors.New("container already exists")
	// ErrNotRunning: Exec (or another call that needs it running) on a
	// container that is defined but not running.
	ErrNotRunning = errors.New("container not running")
	// ErrUnsupported: the Config asks for something this runtime cannot do
	// (a read-write bind on a remote host, an unknown mount type).
	ErrUnsupported = errors.New("not supported by this runtime")
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

// Capabilities say how a runtime wants its containers described. The zero
// value is a local runtime's: a root directory cloned by the caller, host
// paths bound directly, cache volumes as binds of host directories.
type Capabilities struct {
	// ImageRoot: the runtime makes a container's root itself from
	// Config.Root.Image (LXD: the image uploaded once by fingerprint, the
	// instance created from it). The caller then clones no storage and
	// makes no golden volume; Config.Root.Dir is empty.
	ImageRoot bool
	// CopiedBinds: host paths are not on the runtime's host. A read-only
	// bind is copied into the container before Start (LXD: the file API),
	// a read-write bind is ErrUnsupported.
	CopiedBinds bool
	// Volumes: the runtime keeps cache volumes itself (LXD: custom storage
	// volumes), so the caller passes MountVolume mounts through instead of
	// binding directories of its own.
	Volumes bool
}

// Capable is a Runtime that is not described by the zero Capabilities.
type Capable interface {
	Capabilities() Capabilities
}

// CapabilitiesOf returns rt's Capabilities (the zero value for a runtime
// that does not implement Capable).
func CapabilitiesOf(rt Runtime) Capabilities {
	if c, ok := rt.(Capable); ok {
		return c.Capabilities()
	}
	return Capabilities{}
}

// RootDirer is a Runtime that can show a running container's root as the
// container sees it, mounts included, as a local path (lxcrt:
// /proc/<init pid>/root). Artifacts are then collected from that directory
// with symlink-safe local reads (runner/artifact).
type RootDirer interface {
	RootDir(ctx context.Context, name string) (string, error)
}

// FileReader is a Runtime whose containers' files are read through the
// runtime (a remote one: LXD's file API), not a local path. The returned
// file system is the container's root as the container sees it; it
// resolves paths inside the container and never follows a symlink out of
// it. It should implement fs.ReadLinkFS, so that links are reported as
// links. The engine collects artifacts through it when the runtime is not
// a RootDirer.
type FileReader interface {
	Files(ctx context.Context, name string) (fs.FS, error)
}

// Freezer is a Runtime that can freeze every process of a running
// container, so that nothing changes while artifacts are read. Stop still
// works on a frozen container.
type Freezer interface {
	Freeze(ctx context.Context, name string) error
}

// Terminaler is a Runtime that can open a pseudo-terminal inside a running
// container (lxcrt: in the container's own devpts, so that `tty` names
// /dev/pts/N there), its slave handed to host uid:gid (-1 leaves one
// alone). The caller keeps the master and gives the slave to Exec as
// stdin, stdout and stderr with TTY set; it closes both.
type Terminaler interface {
	OpenTerminal(ctx context.Context, name string, uid, gid int) (master, slave *os.File, err error)
}

// ConsoleLogger is a Runtime that keeps a container's own log (lxcrt: the
// LXC log file), for error reports and `stint logs`.
type ConsoleLogger interface {
	LogFile(name string) string
}

// Primer is a Runtime that can ready, in the background, what a Start of
// a container with PID 1 init will need while the caller still prepares
// the container (lxcrt: the host-wide cgroup migration lock, see
// lxcrt/cgroupwarm.go, and the container's monitor process, see
// lxcrt/monitor.go). Prime returns at once; the caller calls release once
// the Start returned.
type Primer interface {
	Prime(init Init) (release func())
}

// CgroupCleaner is a Runtime that can remove the empty cgroups its
// containers leave behind (LXC's after a failed start or a kill -9).
// Teardown and garbage collection use it when the Runtime has it.
type CgroupCleaner interface {
	// CgroupNames returns the names of this runtime's own containers
	// whose cgroups a RemoveCgroups left (busy then): never a name of
	// another runtime instance (another stint root on the same host).
	CgroupNames() ([]string, error)
	// RemoveCgroups removes container name's empty cgroups; a cgroup with
	// processes stays, and the error wraps unix.EBUSY.
	RemoveCgroups(name string) error
}
