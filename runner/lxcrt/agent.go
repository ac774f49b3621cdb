package lxcrt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	lxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/internal/agent"
	"github.com/stintdev/stint/runner/container"
)

// The fast path for jobs (issue 16). A container with stint's minimal init
// (container.InitMinimal: jobs, execs, recipe builds) gets stint-agent as
// its PID 1 when the agent is installed, instead of init.lxc running
// busybox sleep. It is started as `lxc-start -F` would (liblxc's start,
// not daemonized, by a monitor of stint's own: monitor.go), so the
// container's init inherits one end of a socket (internal/agent), and the
// monitor stays as the container's monitor. Each
// Exec without a terminal then asks the agent to run the command, passing
// it the command's stdin, stdout and stderr: no attach helper, no second
// start of the stint binary, no setns, no busybox env.
//
// What stays as it was: Stop and gc stop the container through liblxc (the
// monitor's command socket); Freeze writes the cgroup freezer; an Exec with
// a terminal, one while another runs, and every Exec from another stint
// process (`stint exec`/`shell` into a kept job) attach as before (busybox
// is still bound for attach's env). The monitor has no death signal and a
// session of its own, as the daemonized monitor had: if stint dies the
// container runs on (the agent serves on as a plain init) until stopped.

// agentPath is where the agent is bind-mounted inside a container.
const agentPath = "/" + initDir + "/agent"

// AgentEnv names the stint-agent binary to use, overriding the one beside
// stint's own binary (tests, packagers); "off" turns the fast path off.
const AgentEnv = "STINT_AGENT"

// FindAgent returns the stint-agent binary for jobs' containers: $STINT_AGENT,
// else stint-agent beside self (stint's own binary), if it is there; ""
// when the fast path is off or not available.
func FindAgent(self string) string {
	bin := os.Getenv(AgentEnv)
	if bin == "off" {
		return ""
	}
	if bin == "" {
		bin = filepath.Join(filepath.Dir(self), "stint-agent")
	}
	fi, err := os.Stat(bin)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return ""
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return ""
	}
	return abs
}

// renderAgentInit is the PID 1 of an InitMinimal container on the fast path.
func renderAgentInit(bin string) []kv {
	return []kv{
		{"lxc.mount.entry", fmt.Sprintf("%s %s none bind,ro,create=file 0 0", fstabEscaper.Replace(bin), strings.TrimPrefix(agentPath, "/"))},
		// For an attach into the container (busybox env, see attachArgv).
		{"lxc.mount.entry", fmt.Sprintf("%s %s none bind,ro,create=file 0 0", HostBusybox, strings.TrimPrefix(busyboxPath, "/"))},
		{"lxc.init.cmd", agentPath},
	}
}

// session is a container started on the fast path, in this process.
type session struct {
	mu     sync.Mutex // held by the Exec (or Stop) that uses the agent
	client *agent.Client
	done   chan struct{} // closed once the monitor has exited
	frozen atomic.Bool   // Freeze froze the agent too: Stop thaws it first
}

// usesAgent reports whether container name's config makes the agent its
// PID 1.
func (r *Runtime) usesAgent(name string) bool {
	b, err := os.ReadFile(filepath.Join(r.dir(name), "config"))
	return err == nil && strings.Contains(string(b), "\nlxc.init.cmd = "+agentPath+"\n")
}

// startAgent starts container name under a monitor (a spare Prime spawned,
// or one spawned now) and waits for its agent's Ready.
func (r *Runtime) startAgent(ctx context.Context, name string) error {
	rt, ag, err := agent.Socketpair()
	if err != nil {
		return fmt.Errorf("start container %s: %w", name, err)
	}
	defer ag.Close()
	outPath := filepath.Join(r.dir(name), "start.out")
	out, err := os.Create(outPath)
	if err != nil {
		rt.Close()
		return fmt.Errorf("start container %s: %w", name, err)
	}
	defer out.Close()
	// Held until the agent (in the container's cgroups) is ready: see
	// startlock.go.
	unlock, err := hostLock(unix.LOCK_SH)
	if err != nil {
		rt.Close()
		return fmt.Errorf("start container %s: %w", name, err)
	}
	defer unlock()
	path := "/nonexistent" // see hideShadowTools
	if runsScripts(filepath.Join(r.dir(name), "config")) {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	m, err := r.startMonitor(name, path, ag, out)
	if err != nil {
		rt.Close()
		return fmt.Errorf("start container %s: %w", name, err)
	}
	ag.Close()
	s := &session{client: agent.NewClient(rt), done: make(chan struct{})}
	go func() { _ = m.cmd.Wait(); close(s.done) }()

	ready := make(chan error, 1)
	go func() { _, err := s.client.Ready(); ready <- err }()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		err = r.waitRunning(name)
	}
	if err != nil {
		// Whatever started is stopped the usual way, then the monitor ends.
		_ = r.stopLXC(context.WithoutCancel(ctx), name)
		r.reap(name, s)
		msg, _ := os.ReadFile(outPath)
		return startError(name, msg, err, r.logErrors(name))
	}
	r.sessions.Store(name, s)
	return nil
}

// waitRunning waits until liblxc says RUNNING: the monitor sets it right
// after the init starts, which may be a moment after the agent's Ready.
func (r *Runtime) waitRunning(name string) error {
	c, err := lxc.NewContainer(name, r.lxcpath)
	if err != nil {
		return err
	}
	defer lxc.Release(c)
	if c.State() == lxc.RUNNING || c.Wait(lxc.RUNNING, 10*time.Second) {
		return nil
	}
	return fmt.Errorf("agent ready but the container is %s", c.State())
}

// reap forgets container name's session once its monitor has exited
// (right after the container stopped), closing the agent's socket.
func (r *Runtime) reap(name string, s *session) {
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		// The monitor outlived its container; it is not ours to kill
		// (gc's cgroup cleanup covers what it leaves).
	}
	_ = s.client.Close()
	r.sessions.CompareAndDelete(name, s)
}

// stopAgent stops a container this process started on the fast path by
// asking its agent to exit (it kills every other process and waits for
// them; PID 1's exit stops the container) and waiting for the monitor to
// finish; a frozen container is thawed first (the agent is frozen too).
// It reports false, having changed nothing that matters, when the agent
// can't do it: no session, busy with an Exec, no thaw, or no answer. Stop
// then goes through liblxc.
func (r *Runtime) stopAgent(ctx context.Context, name string) bool {
	v, ok := r.sessions.Load(name)
	if !ok {
		return false
	}
	s := v.(*session)
	if !s.mu.TryLock() {
		return false
	}
	defer s.mu.Unlock()
	if s.frozen.Load() {
		f, err := r.freezer(name)
		if err != nil || f.Thaw(ctx) != nil {
			return false
		}
		s.frozen.Store(false)
	}
	exited := make(chan error, 1)
	go func() { exited <- s.client.Exit() }()
	select {
	case err := <-exited:
		if err != nil {
			return false
		}
	case <-time.After(5 * time.Second):
		return false // liblxc's stop kills it; the Exit then ends
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		return false
	}
	r.sessions.CompareAndDelete(name, s)
	return true
}

// markFrozen notes that container name's agent is frozen.
func (r *Runtime) markFrozen(name string) {
	if v, ok := r.sessions.Load(name); ok {
		v.(*session).frozen.Store(true)
	}
}

// endSession forgets container name's session, if any, once stopped.
func (r *Runtime) endSession(name string) {
	if v, ok := r.sessions.Load(name); ok {
		r.reap(name, v.(*session))
	}
}

// agentExec runs opts through the agent of session s. ok is false when the
// agent can't take it (a terminal, or the agent is busy with another
// Exec): the caller attaches instead.
func (r *Runtime) agentExec(ctx context.Context, name string, opts container.ExecOptions) (st container.ExitStatus, ok bool, err error) {
	v, found := r.sessions.Load(name)
	if !found || opts.TTY {
		return st, false, nil
	}
	s := v.(*session)
	if !s.mu.TryLock() {
		return st, false, nil
	}
	defer s.mu.Unlock()
	sio, err := newExecStdio(opts)
	if err != nil {
		return st, true, fmt.Errorf("exec in container %s: %w", name, err)
	}
	cwd := opts.Cwd
	if cwd == "" {
		cwd = "/"
	}
	type result struct {
		ws  syscall.WaitStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		ws, err := s.client.Run(agent.Command{Argv: opts.Argv, Env: opts.Env, UID: opts.UID, GID: opts.GID, Groups: opts.Groups, Cwd: cwd},
			sio.files[0], sio.files[1], sio.files[2])
		done <- result{ws, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		// The caller stops the container to end the command for sure.
		sio.finish()
		return st, true, fmt.Errorf("exec in container %s: %w", name, ctx.Err())
	}
	sio.finish()
	return r.agentResult(ctx, name, opts, res.ws, res.err)
}

// agentResult turns the agent's answer into Exec's.
func (r *Runtime) agentResult(ctx context.Context, name string, opts container.ExecOptions, ws syscall.WaitStatus, err error) (container.ExitStatus, bool, error) {
	var se *agent.StartError
	switch {
	case errors.As(err, &se):
		// As a shell (and attach's busybox env) would: a message, 127.
		if opts.Stderr != nil {
			fmt.Fprintf(opts.Stderr, "stint: %s\n", se.Msg)
		}
		return container.ExitStatus{Code: 127}, true, nil
	case errors.Is(err, agent.ErrGone):
		// The container was stopped under the command (a Stop, a
		// timeout): it was killed with everything else, as an attached
		// command is.
		if st, serr := r.State(ctx, name); serr == nil && st != container.StateRunning {
			return container.StatusFromWait(syscall.WaitStatus(syscall.SIGKILL)), true, nil
		}
		return container.ExitStatus{}, true, fmt.Errorf("exec in container %s: %w%s", name, err, r.logErrors(name))
	case err != nil:
		return container.ExitStatus{}, true, fmt.Errorf("exec in container %s: %w", name, err)
	}
	st := container.StatusFromWait(ws)
	if st.Signal == syscall.SIGKILL && r.oomKilled(name) {
		st.OOM = true
	}
	return st, true, nil
}

// runsScripts reports whether an LXC config runs a script of its own (a
// hook, a network script, an include that might): liblxc then wants a PATH.
func runsScripts(configFile string) bool {
	b, err := os.ReadFile(configFile)
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, _, _ := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if strings.HasPrefix(key, "lxc.hook.") || strings.Contains(key, ".script.") || strings.HasPrefix(key, "lxc.include") {
			return true
		}
	}
	return false
}
