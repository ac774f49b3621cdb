package lxcrt

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	lxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"
)

// liblxc forks inside the calling process, and a go-lxc handle serialises
// every method on one lock. Forking a multi-threaded Go process is only safe
// straight into exec, and a blocking call on a shared handle stalls the
// others; so, like Incus's forkstart/forkexec, every liblxc call that forks
// (start, attach) runs in a short-lived re-exec of our own binary, with a
// handle of its own. The parent keeps only cheap, fork-free calls (state,
// stop through the container's command socket).

// Helper subcommands (argv[1]); hidden from the CLI.
const (
	helperStart  = "__lxc-start"
	helperAttach = "__lxc-attach"
)

// IsHelper reports whether args (os.Args) ask for a helper subcommand. The
// CLI's main and the TestMain of every package that starts containers call
// it first: `if lxcrt.IsHelper(os.Args) { lxcrt.HelperMain() }`.
func IsHelper(args []string) bool {
	return len(args) > 1 && (args[1] == helperStart || args[1] == helperAttach)
}

// HelperMain runs the helper subcommand named in os.Args and exits.
func HelperMain() {
	// Nothing we were given beyond stdio and the fds of our protocol
	// (read or marked below) may reach the container.
	CloseInheritedFDs()
	args := os.Args
	if len(args) < 4 {
		fmt.Fprintln(os.Stderr, "stint helper: missing arguments")
		os.Exit(2)
	}
	var err error
	switch args[1] {
	case helperStart:
		err = helperStartMain(args[2], args[3])
	case helperAttach:
		err = helperAttachMain(args[2], args[3])
	default:
		err = fmt.Errorf("unknown helper %q", args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helperStartMain(lxcpath, name string) error {
	c, err := lxc.NewContainer(name, lxcpath)
	if err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	defer lxc.Release(c)
	c.SetVerbosity(lxc.Quiet)
	hideShadowTools(c.ConfigFileName())
	// The monitor must not hold our stdio open after we return: it
	// daemonizes and closes every inherited descriptor.
	if err := c.WantDaemonize(true); err != nil {
		return fmt.Errorf("container %s: daemonize: %w", name, err)
	}
	if err := c.WantCloseAllFds(true); err != nil {
		return fmt.Errorf("container %s: close fds: %w", name, err)
	}
	// Start's caller prints "start container <name>: " before this.
	if err := c.Start(); err != nil {
		return err
	}
	if !c.Wait(lxc.RUNNING, 30*time.Second) {
		return fmt.Errorf("not running after 30s (state %s)", c.State())
	}
	return nil
}

// hideShadowTools empties PATH for liblxc when the container's config runs
// no script (a hook, a network script.up/down: those would want a PATH).
// Whenever newuidmap and newgidmap are on PATH, liblxc maps ids through
// them, even as root: two `sh -c` and two setuid execs per start, about a
// fifth of a trivial job here. Root may write the maps itself, which liblxc
// does when they are not found; the ranges stay reserved in /etc/subuid by
// idmap.Ensure all the same. liblxc execs nothing else by name for stint's
// configs (init and busybox are absolute paths; networks are made over
// netlink).
func hideShadowTools(configFile string) {
	if !runsScripts(configFile) {
		_ = os.Setenv("PATH", "/nonexistent")
	}
}

// attachRequest is what the parent passes to the attach helper, as JSON on
// fd 4: never in argv, which every local user reads in /proc (the env holds
// the job's secrets).
type attachRequest struct {
	Argv   []string `json:"argv"`
	Env    []string `json:"env"`
	UID    int      `json:"uid"`
	GID    int      `json:"gid"`
	Groups []int    `json:"groups"`
	Cwd    string   `json:"cwd"`
}

// attachResult is what the attach helper writes to fd 3.
type attachResult struct {
	Status int    `json:"status"` // a wait(2) status
	Error  string `json:"error,omitempty"`
}

func helperAttachMain(lxcpath, name string) error {
	// On a terminal, Ctrl-C and Ctrl-\ reach us with the command: they are
	// the command's to handle. A handler, not SIG_IGN, which the command
	// would inherit across exec.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGQUIT)
	result := os.NewFile(3, "result")
	// The command must not inherit the result pipe: a process it leaves
	// running would keep the parent waiting.
	syscall.CloseOnExec(3)
	reqFile := os.NewFile(4, "request")
	var req attachRequest
	err := json.NewDecoder(reqFile).Decode(&req)
	reqFile.Close()
	if err != nil {
		return fmt.Errorf("attach options: %w", err)
	}
	res := attachResult{}
	status, err := attach(lxcpath, name, req)
	if err != nil {
		res.Error = err.Error()
	}
	res.Status = status
	return json.NewEncoder(result).Encode(res)
}

func attach(lxcpath, name string, req attachRequest) (int, error) {
	c, err := lxc.NewContainer(name, lxcpath)
	if err != nil {
		return -1, fmt.Errorf("container %s: %w", name, err)
	}
	defer lxc.Release(c)
	opts := lxc.DefaultAttachOptions
	opts.ClearEnv = true
	opts.Env = req.Env
	opts.UID, opts.GID, opts.Groups = req.UID, req.GID, req.Groups
	opts.Cwd = req.Cwd
	opts.StdinFd, opts.StdoutFd, opts.StderrFd = 0, 1, 2
	// On a cgroup2 hierarchy liblxc's attach makes an empty ".lxc" leaf in
	// the container's cgroup, then moves the process into it. A removal of
	// empty cgroups in between (gc, for stray names of any stint root: see
	// startlock.go) fails the move, and liblxc 5.0 then _exit(1)s this
	// process without a word (userns_exec_minimal). Hold the start lock
	// shared until the process is in: removals wait, attaches don't.
	unlock, err := hostLock(unix.LOCK_SH)
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", name, err)
	}
	// RunCommandStatus would decode the status to WEXITSTATUS and report a
	// signal as exit 0; wait for the attached process ourselves instead.
	pid, err := c.RunCommandNoWait(req.Argv, opts)
	unlock()
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", name, err)
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: wait for pid %d: %w", name, pid, err)
	}
	return int(ws), nil
}
