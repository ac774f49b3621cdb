package agent

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Main is stint-agent's main: it serves the protocol on ControlFD and
// returns the process's exit code.
func Main() int {
	// Nothing the container's start left open may reach a command: each
	// gets only the three descriptors its request brings.
	if err := unix.CloseRange(0, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		fmt.Fprintf(os.Stderr, "stint-agent: close inherited descriptors: %v\n", err)
		return 1
	}
	if err := Serve(ControlFD); err != nil {
		fmt.Fprintf(os.Stderr, "stint-agent: %v\n", err)
		return 1
	}
	return 0
}

// server is the agent's state; one goroutine (Serve's) owns it.
type server struct {
	c       *conn
	pid1    bool  // PID 1 of a pid namespace: kill(-1) reaches exactly the container
	running int   // the pid of the command being run, 0 if none
	groups  []int // outside a pid namespace: process groups of the commands started
	reaping bool  // a reap (or exit) is waiting for the last child
	exiting bool  // an exit is waiting for the last child
	gone    bool  // the socket ended: serve on as a plain init
	reaped  int   // processes killed and waited for by the current reap
}

// Serve runs the agent's loop on the socket fd. It returns when asked to
// exit, once every process it started (and, as PID 1, every process of its
// pid namespace) is gone. When the socket ends (the runtime is gone: a
// kept job's stint exited, or stint was killed), it serves on as a plain
// init, reaping, and the container runs on as LXC's own minimal init would
// keep it: whoever stops it (a Stop, stint gc) ends it.
//
// As PID 1 it reaps every orphan of the container. Elsewhere (tests) it
// makes itself the child subreaper, so that orphans of its commands come to
// it, and Reap reaches only its commands' process groups.
func Serve(fd int) error {
	s := &server{c: newConn(fd), pid1: os.Getpid() == 1}
	// Ready first: what the runtime does once it hears it (its journal,
	// the command's pipes) overlaps the set-up below, and no request is
	// read before the set-up is done.
	if err := s.report(Report{Kind: KindReady, Pid: os.Getpid()}); err != nil {
		return err
	}
	if !s.pid1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("become child subreaper: %w", err)
		}
	}
	// Signals from inside the container (kill -TERM 1) are the agent's to
	// ignore: a handler, not SIG_IGN, which commands would inherit.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	defer signal.Stop(sigchld)

	reqs := make(chan request)
	ended := make(chan error, 1)
	go s.readRequests(reqs, ended)
	for {
		select {
		case req := <-reqs:
			if err := s.handle(req); err != nil {
				return err
			}
		case err := <-ended:
			// The runtime is gone: nothing more will be asked or heard.
			ended, reqs, s.gone = nil, nil, true
			if err != nil {
				fmt.Fprintf(os.Stderr, "stint-agent: socket: %v\n", err)
			}
		case <-sigchld:
		}
		// Every wake-up: collect whatever has ended (SIGCHLD coalesces).
		done, err := s.collect()
		if err != nil || done {
			return err
		}
	}
}

// request is a Request with the descriptors that came with it.
type request struct {
	Request
	fds []int
}

// readRequests receives requests until the socket ends (ErrGone: nil) or
// fails; a malformed message ends it too.
func (s *server) readRequests(reqs chan<- request, ended chan<- error) {
	for {
		var r request
		fds, err := s.c.recv(&r.Request)
		if err != nil {
			if errors.Is(err, ErrGone) {
				err = nil
			}
			ended <- err
			return
		}
		r.fds = fds
		reqs <- r
	}
}

// report sends r; once the runtime is gone, reports go nowhere.
func (s *server) report(r Report) error {
	if s.gone {
		return nil
	}
	if err := s.c.send(r); err != nil {
		if errors.Is(err, ErrGone) {
			s.gone = true
			return nil
		}
		return fmt.Errorf("report %s: %w", r.Kind, err)
	}
	return nil
}

func (s *server) handle(req request) error {
	defer closeAll(req.fds) // the command has its own copies
	switch {
	case s.reaping:
		return s.report(Report{Kind: KindError, Error: fmt.Sprintf("request %q during a reap", req.Op)})
	case req.Op == OpRun && s.running != 0:
		return s.report(Report{Kind: KindError, Error: "a command is running"})
	case req.Op == OpRun && len(req.fds) != 3:
		return s.report(Report{Kind: KindError, Error: fmt.Sprintf("run with %d descriptors, want 3 (stdin, stdout, stderr)", len(req.fds))})
	case req.Op == OpRun:
		pid, err := s.start(req.Command, req.fds)
		if err != nil {
			return s.report(Report{Kind: KindFailed, Error: err.Error()})
		}
		s.running = pid
		s.groups = append(s.groups, pid)
		return nil
	case req.Op == OpReap:
		s.startReap(false)
		return nil
	case req.Op == OpExit:
		s.startReap(true)
		return nil
	default:
		return s.report(Report{Kind: KindError, Error: fmt.Sprintf("unknown op %q", req.Op)})
	}
}

// start starts cmd (see OpRun) with stdio and returns its pid.
func (s *server) start(cmd Command, stdio []int) (int, error) {
	if len(cmd.Argv) == 0 {
		return 0, errors.New("no command")
	}
	path, err := lookPath(cmd.Argv[0], cmd.Env)
	if err != nil {
		return 0, err
	}
	dir := cmd.Cwd
	if dir == "" {
		dir = "/"
	}
	groups := make([]uint32, len(cmd.Groups))
	for i, g := range cmd.Groups {
		groups[i] = uint32(g)
	}
	env := cmd.Env
	if env == nil {
		env = []string{} // exactly nothing: ForkExec would not add ours, but be plain about it
	}
	pid, err := syscall.ForkExec(path, cmd.Argv, &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{uintptr(stdio[0]), uintptr(stdio[1]), uintptr(stdio[2])},
		Sys: &syscall.SysProcAttr{
			Setsid:     true,
			Credential: &syscall.Credential{Uid: uint32(cmd.UID), Gid: uint32(cmd.GID), Groups: groups},
		},
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return pid, nil
}

// lookPath finds argv0 as execvp(3) would, on the PATH of the command's own
// environment (not the agent's).
func lookPath(argv0 string, env []string) (string, error) {
	if strings.Contains(argv0, "/") {
		return argv0, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, argv0)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %q", argv0, path)
}

// startReap kills every other process (see OpReap, OpExit); collect
// reports the end once the last is waited for.
func (s *server) startReap(exit bool) {
	s.reaping, s.reaped = true, 0
	s.exiting = s.exiting || exit
	if s.pid1 {
		_ = syscall.Kill(-1, syscall.SIGKILL)
		return
	}
	for _, pg := range s.groups {
		_ = syscall.Kill(-pg, syscall.SIGKILL)
	}
}

// collect waits for every child that has ended, reports the running
// command's end, and finishes a reap once no child is left. done: the agent
// should exit now.
func (s *server) collect() (done bool, err error) {
	for {
		var ws syscall.WaitStatus
		pid, werr := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if werr == syscall.EINTR {
			continue
		}
		if werr == syscall.ECHILD {
			break // no child at all
		}
		if werr != nil {
			return true, fmt.Errorf("wait for children: %w", werr)
		}
		if pid == 0 {
			return false, nil // children remain, none has ended yet
		}
		if pid == s.running {
			s.running = 0
			if err := s.report(Report{Kind: KindExited, Status: int(ws)}); err != nil {
				return true, err
			}
			continue
		}
		if s.reaping {
			s.reaped++
		}
	}
	// No child is left.
	if !s.reaping {
		return false, nil
	}
	s.reaping, s.groups = false, nil
	switch {
	case s.exiting:
		return true, s.report(Report{Kind: KindBye, Reaped: s.reaped})
	default:
		return false, s.report(Report{Kind: KindReaped, Reaped: s.reaped})
	}
}
