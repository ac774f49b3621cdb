// Package lxcrt is stint's local container runtime on liblxc (go-lxc). It
// implements the container.Runtime contract over an LXC path of stint's own (normally
// <root>/containers) and never touches a container outside it.
package lxcrt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	lxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/runner/container"
)

// Runtime is the LXC runtime. It is safe for concurrent use: each call opens
// its own go-lxc handle, and every forking call runs in a helper process.
type Runtime struct {
	lxcpath string
	self    string // the binary that serves the helper subcommands
	host    Host
	// sessions holds the containers this process started on the fast
	// path (agent.go): name → *session.
	sessions sync.Map
	// stopped holds the containers whose agent this process stopped and
	// whose monitor it saw exit: a second Stop (teardown's, after the
	// job's) needs no look through liblxc. Start forgets a name.
	stopped sync.Map
	// monitors holds the spare monitors Prime spawned (monitor.go).
	monitors monitorPool
}

var (
	_ container.Runtime       = (*Runtime)(nil)
	_ container.RootDirer     = (*Runtime)(nil)
	_ container.Freezer       = (*Runtime)(nil)
	_ container.ConsoleLogger = (*Runtime)(nil)
	_ container.Primer        = (*Runtime)(nil)
)

// New returns a runtime over lxcpath, creating the directory.
func New(lxcpath string) (*Runtime, error) {
	if !filepath.IsAbs(lxcpath) {
		return nil, fmt.Errorf("lxc path %q is not absolute", lxcpath)
	}
	if err := os.MkdirAll(lxcpath, 0o755); err != nil {
		return nil, fmt.Errorf("lxc path %s: %w", lxcpath, err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find stint's own binary for the lxc helper: %w", err)
	}
	for _, bin := range []string{HostInit, HostBusybox} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("container init: %w (install lxc and busybox-static)", err)
		}
	}
	host := ProbeHost()
	host.Agent = FindAgent(self)
	if !host.AppArmor {
		slog.Info("AppArmor is not enabled on this host: containers run without an AppArmor profile")
	}
	if host.Seccomp == "" {
		slog.Info("LXC's seccomp policy is not installed: containers run without seccomp", "path", SeccompPolicy)
	}
	return &Runtime{lxcpath: lxcpath, self: self, host: host}, nil
}

// Host is what the runtime detected about the host (cgroup layout, AppArmor).
func (r *Runtime) Host() Host { return r.host }

// LXCPath is the runtime's LXC path.
func (r *Runtime) LXCPath() string { return r.lxcpath }

func (r *Runtime) dir(name string) string { return filepath.Join(r.lxcpath, name) }

// LogFile is the container's own LXC log.
func (r *Runtime) LogFile(name string) string { return filepath.Join(r.dir(name), "lxc.log") }

func validName(name string) error {
	if name == "" || len(name) > 64 || strings.ContainsAny(name, "/ \t\n") || name[0] == '.' {
		return fmt.Errorf("invalid container name %q", name)
	}
	return nil
}

// Create writes the container's LXC config.
func (r *Runtime) Create(_ context.Context, name string, cfg container.Config) error {
	if err := validName(name); err != nil {
		return err
	}
	if cfg.LogFile == "" {
		cfg.LogFile = r.LogFile(name)
	}
	if err := os.Mkdir(r.dir(name), 0o750); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create container %s: %w", name, container.ErrExists)
		}
		return fmt.Errorf("create container %s: %w", name, err)
	}
	undo := func() {
		_ = r.unstage(name)
		_ = r.removeInit(name)
		_ = os.RemoveAll(r.dir(name))
	}
	script, err := r.writeInit(name, cfg)
	if err != nil {
		undo()
		return fmt.Errorf("create container %s: %w", name, err)
	}
	if script != nil {
		cfg.Mounts = append(slices.Clone(cfg.Mounts), *script)
	}
	// Readonly binds are mounted here, read-only, first (see staged.go).
	var staged []stagedMount
	cfg.Mounts, staged = r.planStaged(name, cfg.Mounts)
	if err := r.stage(name, staged); err != nil {
		undo()
		return fmt.Errorf("create container %s: %w", name, err)
	}
	lines, err := Render(name, cfg, r.host)
	if err != nil {
		undo()
		return err
	}
	data := "# written by stint; do not edit\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(r.dir(name), "config"), []byte(data), 0o640); err != nil {
		undo()
		return fmt.Errorf("create container %s: %w", name, err)
	}
	return nil
}

// Start starts the container through the helper subcommand.
func (r *Runtime) Start(ctx context.Context, name string) error {
	r.stopped.Delete(name)
	if _, err := os.Stat(filepath.Join(r.dir(name), "config")); err != nil {
		return fmt.Errorf("start container %s: %w", name, container.ErrNotFound)
	}
	// A reboot took the staged read-only mounts: remake them.
	if err := r.restage(name); err != nil {
		return fmt.Errorf("start container %s: %w", name, err)
	}
	if r.usesAgent(name) {
		return r.startAgent(ctx, name)
	}
	// Output into a file, not a pipe: the monitor daemonizes and must not
	// be able to keep us waiting on a pipe it inherited.
	out, err := os.CreateTemp(r.dir(name), "start-*.out")
	if err != nil {
		return fmt.Errorf("start container %s: %w", name, err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	unlock, err := hostLock(unix.LOCK_SH) // see startlock.go
	if err != nil {
		return fmt.Errorf("start container %s: %w", name, err)
	}
	defer unlock()
	cmd := exec.CommandContext(ctx, r.self, helperStart, r.lxcpath, name)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a Ctrl-C on the terminal reaches stint only,
	// which then tears down in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(out.Name())
		return startError(name, msg, err, r.logErrors(name))
	}
	return nil
}

// startError is Start's error for container name: what the starter
// printed (output, if anything), its error, and the LXC log's errors.
func startError(name string, output []byte, err error, logErrors string) error {
	if msg := strings.TrimSpace(string(output)); msg != "" {
		return fmt.Errorf("start container %s: %s: %w%s", name, msg, err, logErrors)
	}
	return fmt.Errorf("start container %s: %w%s", name, err, logErrors)
}

// logErrors returns the ERROR lines of the container's LXC log, for error
// messages (go-lxc's own errors carry no context).
func (r *Runtime) logErrors(name string) string {
	f, err := os.Open(r.LogFile(name))
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), " ERROR ") {
			lines = append(lines, sc.Text())
		}
	}
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	if len(lines) == 0 {
		return ""
	}
	return "\nlxc log " + r.LogFile(name) + ":\n  " + strings.Join(lines, "\n  ")
}

// Exec runs a command in the running container: through its agent when
// this process started it on the fast path (agent.go), else through the
// attach helper. Its environment is exactly opts.Env (PATH, if any, comes
// first): the helper clears its own and LXC's additions.
func (r *Runtime) Exec(ctx context.Context, name string, opts container.ExecOptions) (container.ExitStatus, error) {
	if len(opts.Argv) == 0 {
		return container.ExitStatus{}, fmt.Errorf("exec in container %s: no command", name)
	}
	if st, ok, err := r.agentExec(ctx, name, opts); ok {
		return st, err
	}
	cwd := opts.Cwd
	if cwd == "" {
		cwd = "/"
	}
	argv := attachArgv(opts)
	req, err := json.Marshal(attachRequest{Argv: argv, Env: opts.Env, UID: opts.UID, GID: opts.GID, Groups: opts.Groups, Cwd: cwd})
	if err != nil {
		return container.ExitStatus{}, err
	}
	resR, resW, err := os.Pipe()
	if err != nil {
		return container.ExitStatus{}, fmt.Errorf("exec in container %s: %w", name, err)
	}
	defer resR.Close()
	reqR, reqW, err := os.Pipe()
	if err != nil {
		resW.Close()
		return container.ExitStatus{}, fmt.Errorf("exec in container %s: %w", name, err)
	}
	defer reqW.Close()
	cmd := exec.Command(r.self, helperAttach, r.lxcpath, name)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	if opts.Stdout == nil {
		cmd.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		cmd.Stderr = io.Discard
	}
	cmd.ExtraFiles = []*os.File{resW, reqR} // fd 3: the result; fd 4: the request
	// Without a terminal, its own process group, as for Start. With one, it
	// must stay in the foreground group to read the terminal (else SIGTTIN).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: !opts.TTY}
	// A process the command leaves running in the background keeps our
	// output pipes open; don't wait for it past the command's end.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		resW.Close()
		reqR.Close()
		return container.ExitStatus{}, fmt.Errorf("exec in container %s: %w", name, err)
	}
	resW.Close()
	reqR.Close()
	// A large env may not fit the pipe's buffer: write while it reads.
	go func() { _, _ = reqW.Write(req); reqW.Close() }()
	var res attachResult
	decoded := make(chan error, 1)
	go func() { decoded <- json.NewDecoder(resR).Decode(&res) }()

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		// The caller stops the container to end the command for sure;
		// here we only stop waiting for the attacher.
		_ = cmd.Process.Kill()
		<-waited
		return container.ExitStatus{}, fmt.Errorf("exec in container %s: %w", name, ctx.Err())
	}
	if derr := <-decoded; derr != nil {
		return container.ExitStatus{}, fmt.Errorf("exec in container %s: attach helper failed: %v (no result: %v)%s", name, werr, derr, r.logErrors(name))
	}
	if res.Error != "" {
		// The attacher found no running container: say so in the
		// contract's terms (checked only now, not before every Exec).
		if st, err := r.State(ctx, name); err == nil && st != container.StateRunning {
			if st == container.StateAbsent {
				return container.ExitStatus{}, fmt.Errorf("exec in container %s: %w", name, container.ErrNotFound)
			}
			return container.ExitStatus{}, fmt.Errorf("exec in container %s: %w", name, container.ErrNotRunning)
		}
		return container.ExitStatus{}, fmt.Errorf("%s%s", res.Error, r.logErrors(name))
	}
	st := container.StatusFromWait(syscall.WaitStatus(res.Status))
	if st.Signal == syscall.SIGKILL && r.oomKilled(name) {
		st.OOM = true
	}
	return st, nil
}

// attachArgv is the command line the attach helper runs for opts.
func attachArgv(opts container.ExecOptions) []string {
	// The env reaches the command through attach's own environment, not
	// argv (visible to every user in /proc). env only undoes what LXC adds
	// on a cleared environment: container=lxc, and a default PATH (first).
	argv := []string{busyboxPath, "env", "-u", "container"}
	if !slices.ContainsFunc(opts.Env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		argv = append(argv, "-u", "PATH")
	}
	for _, kv := range opts.Env {
		if strings.HasPrefix(kv, "container=") {
			argv = append(argv, kv)
		}
	}
	if opts.TTY {
		// The terminal becomes the command's controlling terminal, in a
		// session of its own: job control, and TIOCSTI only ever into it.
		argv = append(argv, busyboxPath, "setsid", "-c")
	}
	argv = append(argv, opts.Argv...)
	return argv
}

// oomKilled reports whether the container's memory cgroup saw an OOM kill.
func (r *Runtime) oomKilled(name string) bool {
	c, err := lxc.NewContainer(name, r.lxcpath)
	if err != nil {
		return false
	}
	defer lxc.Release(c)
	key, field := "memory.oom_control", "oom_kill"
	if r.host.CgroupV2 {
		key, field = "memory.events", "oom_kill"
	}
	for _, line := range c.CgroupItem(key) {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == field && f[1] != "0" {
			return true
		}
	}
	return false
}

// Stop kills the container (every process, PID 1 included) and waits until
// it is stopped. It uses a handle of its own, so a concurrent Exec or wait
// on another handle never stalls it.
func (r *Runtime) Stop(ctx context.Context, name string) error {
	if _, ok := r.stopped.Load(name); ok {
		return nil
	}
	if r.stopAgent(ctx, name) {
		r.stopped.Store(name, struct{}{})
		return nil
	}
	err := r.stopLXC(ctx, name)
	if err == nil {
		r.endSession(name)
	}
	return err
}

// stopLXC stops container name through liblxc (its monitor's command
// socket, whichever process started it).
func (r *Runtime) stopLXC(ctx context.Context, name string) error {
	if _, err := os.Stat(filepath.Join(r.dir(name), "config")); err != nil {
		return nil
	}
	c, err := lxc.NewContainer(name, r.lxcpath)
	if err != nil {
		return fmt.Errorf("stop container %s: %w", name, err)
	}
	defer lxc.Release(c)
	if c.State() == lxc.STOPPED {
		return nil
	}
	// Stop asks the monitor to SIGKILL the init: no grace for a job.
	if err := c.Stop(); err != nil && c.State() != lxc.STOPPED {
		return fmt.Errorf("stop container %s: %w%s", name, err, r.logErrors(name))
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.State() != lxc.STOPPED {
		if time.Now().After(deadline) {
			return fmt.Errorf("stop container %s: still %s after 30s", name, c.State())
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stop container %s: %w", name, err)
		}
		// liblxc's wait listens to the monitor's state changes: it returns
		// as soon as the container is stopped, where a polling interval
		// cost up to its length (the container is usually not yet stopped
		// right after the kill).
		c.Wait(lxc.STOPPED, time.Second)
	}
	return nil
}

// RootDir returns /proc/<init pid>/root of the running container: its root
// with every mount it made (binds, tmpfs, caches), for artifact collection.
func (r *Runtime) RootDir(_ context.Context, name string) (string, error) {
	c, err := lxc.NewContainer(name, r.lxcpath)
	if err != nil {
		return "", fmt.Errorf("root of container %s: %w", name, err)
	}
	defer lxc.Release(c)
	pid := c.InitPid()
	if pid <= 0 {
		return "", fmt.Errorf("root of container %s: %w", name, container.ErrNotRunning)
	}
	return fmt.Sprintf("/proc/%d/root", pid), nil
}

// Freeze freezes every process of the container: it writes the cgroup
// freezer itself (internal/freezer, a short bounded back-off), not through
// liblxc, whose cgroup-v1 freeze sleeps a whole second whenever its first
// read of freezer.state says FREEZING; a job's artifacts waited for it.
func (r *Runtime) Freeze(ctx context.Context, name string) error {
	f, err := r.freezer(name)
	if err != nil {
		return fmt.Errorf("freeze container %s: %w", name, err)
	}
	r.markFrozen(name) // before: a half-done freeze may have caught the agent
	if err := f.Freeze(ctx); err != nil {
		return fmt.Errorf("freeze container %s: %w", name, err)
	}
	return nil
}

// Destroy stops the container and removes its directory (config, log). The
// rootfs is storage's, so liblxc's destroy (which would delete it) is not
// used.
func (r *Runtime) Destroy(ctx context.Context, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	if err := r.Stop(ctx, name); err != nil {
		return err
	}
	if err := r.unstage(name); err != nil {
		return err
	}
	if err := r.removeInit(name); err != nil {
		return err
	}
	if err := os.RemoveAll(r.dir(name)); err != nil {
		return fmt.Errorf("destroy container %s: %w", name, err)
	}
	r.stopped.Delete(name)
	return nil
}

// State reports the container's state.
func (r *Runtime) State(_ context.Context, name string) (container.State, error) {
	if _, err := os.Stat(filepath.Join(r.dir(name), "config")); err != nil {
		return container.StateAbsent, nil
	}
	c, err := lxc.NewContainer(name, r.lxcpath)
	if err != nil {
		return "", fmt.Errorf("state of container %s: %w", name, err)
	}
	defer lxc.Release(c)
	switch c.State() {
	case lxc.STOPPED:
		return container.StateStopped, nil
	case lxc.RUNNING:
		return container.StateRunning, nil
	default:
		return container.StateOther, nil
	}
}

// List names the containers in the runtime's LXC path.
func (r *Runtime) List(_ context.Context) ([]string, error) {
	ents, err := os.ReadDir(r.lxcpath)
	if err != nil {
		return nil, fmt.Errorf("list containers in %s: %w", r.lxcpath, err)
	}
	var names []string
	for _, e := range ents {
		// Dot directories are not containers (validName): staged mounts.
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Config reads back a container's LXC config file (for tests and `ps`).
func (r *Runtime) Config(name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(r.dir(name), "config"))
	if err != nil {
		return nil, fmt.Errorf("config of container %s: %w", name, err)
	}
	return bytes.TrimSpace(b), nil
}

// Version is liblxc's version.
func Version() string { return lxc.Version() }
