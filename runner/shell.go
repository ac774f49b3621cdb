package runner

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/stintdev/stint/internal/agentproxy"
	"github.com/stintdev/stint/internal/hostuser"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
)

// AttachFunc is the caller's side of a command's terminal: it gets the
// terminal the engine opened in the container before the command starts
// (the slave only to set its modes; the command gets it), copies between
// the master and the caller's terminal, and returns what ends that once the
// command ended.
type AttachFunc func(master, slave *os.File) (done func())

// ErrNoShellTarget means `stint shell NAME` found nothing called NAME: no
// kept job, no long-lived container, no container of the set.
var ErrNoShellTarget = errors.New("no such container")

// ErrNotRunning means the long-lived container is stopped (its spec says
// state = "stopped"): apply starts it, not shell.
var ErrNotRunning = errors.New("container is stopped")

// ShellRequest is what `stint shell` asks for.
type ShellRequest struct {
	// Name is a kept job (its job name or container name, as `stint ps`
	// shows it), a long-lived container's runtime name, or a container of
	// Set.
	Name string
	// Set is the spec set in the current directory (or -f); nil: none.
	Set *spec.Set
	// Argv is the command; empty: the user's login shell.
	Argv []string
	// User and Workdir override the container's defaults.
	User, Workdir string
	// Term is the caller's TERM, for a terminal ("" : dumb).
	Term string
	// Cwd is the caller's working directory: where the shell starts when
	// the container has no workdir and binds it at the same path.
	Cwd string
	// Stdin, Stdout and Stderr are the command's streams without a terminal.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Terminal, when set, gets the master of a terminal opened in the
	// container (the command's stdin, stdout and stderr) and copies between
	// it and the caller's; the func it returns is called once the command
	// ended.
	Terminal AttachFunc
	// Note receives what the caller should hear on stderr ("creating dev",
	// "no SSH agent"); nil: discarded.
	Note func(msg string)
}

// shellInfo is what `stint shell` needs of a container that its runtime
// does not keep: the environment, the default user and directory.
type shellInfo struct {
	Env        []string       `json:"env"` // KEY=VALUE, the job's whole environment
	User       string         `json:"user,omitempty"`
	Workdir    string         `json:"workdir,omitempty"`
	Privileged bool           `json:"privileged,omitempty"`
	HostUser   *hostuser.User `json:"host_user,omitempty"`
	SSHAgent   bool           `json:"ssh_agent,omitempty"`
	// SamePath are the binds at the same path inside as on the host.
	SamePath []string `json:"same_path,omitempty"`
}

// shellTarget is the container `stint shell` enters.
type shellTarget struct {
	name string // runtime name
	info shellInfo
	kept bool // a kept job: started for the shell, stopped after
}

// Shell runs a login shell (or req.Argv) in a container: a kept job, a
// running long-lived container, or a container of req.Set, made first as
// apply would if it does not exist. The environment is the container's
// own, never the caller's. It returns how the command ended.
func (h *Host) Shell(ctx context.Context, req ShellRequest) (container.ExitStatus, error) {
	note := req.Note
	if note == nil {
		note = func(string) {}
	}
	r, err := h.engine(ctx)
	if err != nil {
		return container.ExitStatus{}, err
	}
	t, err := h.shellTarget(ctx, r, req, note)
	if err != nil {
		return container.ExitStatus{}, err
	}
	if t.kept {
		// A kept job's container is stopped: started for the shell, and
		// stopped again after it (unless another shell had started it).
		st, err := r.Runtime.State(ctx, t.name)
		if err != nil {
			return container.ExitStatus{}, fmt.Errorf("shell: kept job %s: %w", t.name, err)
		}
		if st != container.StateRunning {
			if err := r.Runtime.Start(ctx, t.name); err != nil {
				return container.ExitStatus{}, fmt.Errorf("shell: start kept job %s: %w", t.name, err)
			}
			defer func() { _ = r.Runtime.Stop(context.WithoutCancel(ctx), t.name) }()
		}
	}
	return r.shellIn(ctx, t, req, note)
}

// shellIn resolves the user in the running container and runs the command.
func (r *Runner) shellIn(ctx context.Context, t shellTarget, req ShellRequest, note func(string)) (container.ExitStatus, error) {
	root, done, err := r.userRoot(ctx, t.name) // shell_remote.go
	if err != nil {
		return container.ExitStatus{}, fmt.Errorf("shell: %w", err)
	}
	defer done()
	name := cmp.Or(req.User, t.info.User)
	if name == "" && t.info.HostUser != nil {
		name = t.info.HostUser.Name
	}
	u, err := LookupUser(root, name)
	if err != nil {
		return container.ExitStatus{}, fmt.Errorf("shell in %s: %w", t.name, err)
	}
	env := shellEnv(t.info.Env, u, req.Term)
	if t.info.SSHAgent && t.info.HostUser != nil {
		sock, stop := r.shellAgent(t, *t.info.HostUser, note)
		defer stop()
		if sock != "" {
			env = setEnv(env, "SSH_AUTH_SOCK", sock)
		}
	}
	argv := req.Argv
	if len(argv) == 0 {
		argv = []string{cmp.Or(u.Shell, "/bin/sh"), "-l"}
	}
	opts := container.ExecOptions{Argv: argv, Env: env, UID: u.UID, GID: u.GID, Groups: u.Groups,
		Cwd:   cmp.Or(req.Workdir, t.info.Workdir, within(req.Cwd, t.info.SamePath), u.Home, "/"),
		Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr}
	if req.Terminal != nil {
		done, err := r.terminalFor(ctx, t.name, u, t.info.Privileged, t.info.HostUser, &opts, req.Terminal)
		if err != nil {
			return container.ExitStatus{}, err
		}
		defer done()
	}
	return r.Runtime.Exec(ctx, t.name, opts)
}

// terminalFor opens a terminal in container name, owned by u (its host
// ids: through the hole for the host user), makes it the command's stdin,
// stdout and stderr, and hands its master to attach. The func returned
// ends it once the command ended.
func (r *Runner) terminalFor(ctx context.Context, name string, u User, privileged bool, hostUser *hostuser.User,
	opts *container.ExecOptions, attach AttachFunc) (func(), error) {
	term, ok := r.Runtime.(container.Terminaler)
	if !ok {
		return nil, fmt.Errorf("a terminal in %s: %w", name, container.ErrUnsupported)
	}
	uid, gid := uint32(u.UID), uint32(u.GID)
	hole := hostUser != nil && uid == hostUser.UID
	if !privileged && !hole {
		uid, _ = r.IDMap.ShiftUID(uid)
		gid, _ = r.IDMap.ShiftGID(gid)
	}
	master, slave, err := term.OpenTerminal(ctx, name, int(uid), int(gid))
	if err != nil {
		return nil, err
	}
	opts.Stdin, opts.Stdout, opts.Stderr, opts.TTY = slave, slave, slave, true
	detach := attach(master, slave)
	return func() {
		slave.Close()
		detach()
		master.Close()
	}, nil
}

// shellAgent listens for the session's SSH agent in the container's agent
// directory; "" (and a note) when the user has no agent.
func (r *Runner) shellAgent(t shellTarget, u hostuser.User, note func(string)) (string, func()) {
	a, err := hostuser.FindAgent(hostuser.Options{Getenv: r.Getenv}, u)
	if err != nil {
		note(fmt.Sprintf("warning: ssh_agent: %v", err))
		return "", func() {}
	}
	sock := fmt.Sprintf("%d.sock", os.Getpid())
	p, err := agentproxy.Listen(filepath.Join(r.AgentDir, t.name, sock), a, int(u.UID), int(u.GID))
	if err != nil {
		a.Close()
		note(fmt.Sprintf("warning: ssh_agent: %v", err))
		return "", func() {}
	}
	return AgentTarget + "/" + sock, func() { p.Close(); a.Close() }
}

// shellEnv is a shell's environment: the container's, with HOME, USER,
// LOGNAME and SHELL of the user it runs as, PATH defaulted, and TERM.
func shellEnv(base []string, u User, term string) []string {
	env := slices.Clone(base)
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		env = append(env, "PATH="+DefaultPath)
	}
	env = setEnv(env, "HOME", cmp.Or(u.Home, "/"))
	env = setEnv(env, "USER", u.Name)
	env = setEnv(env, "LOGNAME", u.Name)
	env = setEnv(env, "SHELL", cmp.Or(u.Shell, "/bin/sh"))
	return setEnv(env, "TERM", cmp.Or(term, "dumb"))
}

// setEnv sets k in env, replacing an earlier value.
func setEnv(env []string, k, v string) []string {
	env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
	return append(env, k+"="+v)
}

// shellTarget finds the container req names: a kept job (newest first),
// then a long-lived container, then a container of the set (made now).
func (h *Host) shellTarget(ctx context.Context, r *Runner, req ShellRequest, note func(string)) (shellTarget, error) {
	recs, err := r.State.List()
	if err != nil {
		return shellTarget{}, err
	}
	slices.SortFunc(recs, func(a, b state.Record) int { return b.Created.Compare(a.Created) })
	for _, rec := range recs {
		if rec.Kept && rec.Kind != state.KindContainer && rec.Remote == r.Remote && (rec.Name == req.Name || rec.Job == req.Name) {
			info, err := r.readShellInfo(rec.Name)
			if err != nil {
				return shellTarget{}, err
			}
			return shellTarget{name: rec.Name, info: info, kept: true}, nil
		}
	}
	rtName := req.Name
	if req.Set != nil && slices.ContainsFunc(req.Set.Containers, func(c spec.Container) bool { return c.Name == req.Name }) {
		rtName = reconcile.RuntimeName(req.Set.Name, req.Name)
	}
	for _, rec := range recs {
		if rec.Kind == state.KindContainer && rec.Name == rtName && rec.Remote == r.Remote {
			return h.longLivedTarget(ctx, r, req, rec.Set, rec.Name)
		}
	}
	// On a remote, its long-lived instances have no record here.
	if set, ok, err := r.remoteLongLivedSet(ctx, rtName); err != nil {
		return shellTarget{}, err
	} else if ok {
		return h.longLivedTarget(ctx, r, req, set, rtName)
	}
	if rtName == req.Name { // not a container of the set either
		return shellTarget{}, fmt.Errorf("shell: %q: %w (not a kept job, a long-lived container, or a container of the spec set here)", req.Name, ErrNoShellTarget)
	}
	note(fmt.Sprintf("creating %s (as stint apply would)", req.Name))
	if err := h.applyOne(ctx, req.Set, req.Name); err != nil {
		return shellTarget{}, err
	}
	return h.longLivedTarget(ctx, r, req, req.Set.Name, rtName)
}

// longLivedTarget is long-lived container rtName, which must be running.
func (h *Host) longLivedTarget(ctx context.Context, r *Runner, req ShellRequest, set, rtName string) (shellTarget, error) {
	st, err := r.Runtime.State(ctx, rtName)
	if err != nil {
		return shellTarget{}, err
	}
	if st != container.StateRunning {
		return shellTarget{}, fmt.Errorf("shell: container %s: %w (stint apply starts it; stint logs %s says why it stopped)", rtName, ErrNotRunning, rtName)
	}
	b, err := h.Containers(ctx, req.Set)
	if err != nil {
		return shellTarget{}, err
	}
	c, err := b.specOf(ctx, rtName)
	if err != nil {
		return shellTarget{}, fmt.Errorf("shell: container %s: %w", rtName, err)
	}
	info := shellInfo{User: c.User, Workdir: c.Workdir, Privileged: c.Privileged, SSHAgent: c.SSHAgent, SamePath: samePath(c.Mounts)}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		info.Env = append(info.Env, k+"="+c.Env[k])
	}
	if c.HostUser {
		d, err := b.devFor(set, *c, rtName, false)
		if err != nil {
			return shellTarget{}, err
		}
		info.HostUser = &d.user
	}
	return shellTarget{name: rtName, info: info}, nil
}

// applyOne makes and starts container name of set, as apply would.
func (h *Host) applyOne(ctx context.Context, set *spec.Set, name string) error {
	b, err := h.Containers(ctx, set)
	if err != nil {
		return err
	}
	actual, err := b.List(ctx, set.Name)
	if err != nil {
		return err
	}
	var mine []reconcile.Action
	for _, a := range reconcile.Plan(set.Containers, set.Name, actual) {
		if a.Name == name {
			mine = append(mine, a)
		}
	}
	outcomes, err := reconcile.Apply(ctx, b, mine, 1)
	if err != nil {
		return err
	}
	for _, o := range outcomes {
		if o.Err != nil {
			return fmt.Errorf("create container %s: %w", name, o.Err)
		}
	}
	return nil
}

// rememberShell keeps what `stint shell` needs of a kept job.
func (r *Runner) rememberShell(inst *instance) error {
	if r.SpecDir == "" {
		return nil // a Runner without a root's layout (tests)
	}
	info := shellInfo{Env: inst.env, User: inst.req.User, Workdir: inst.req.Workdir, Privileged: inst.req.Privileged,
		SamePath: samePath(inst.req.Mounts)}
	if inst.req.Dev != nil {
		info.HostUser = &inst.req.Dev.user
	}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.SpecDir, 0o700); err != nil {
		return fmt.Errorf("keep %s: %w", inst.req.Container, err)
	}
	return renameio.WriteFile(r.shellInfoPath(inst.req.Container), append(data, '\n'), 0o600)
}

func (r *Runner) readShellInfo(name string) (shellInfo, error) {
	var info shellInfo
	data, err := os.ReadFile(r.shellInfoPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return shellInfo{Env: []string{"PATH=" + DefaultPath}}, nil // kept by an older stint
	}
	if err != nil {
		return info, fmt.Errorf("shell: kept job %s: %w", name, err)
	}
	if err := json.Unmarshal(data, &info); err != nil {
		return info, fmt.Errorf("shell: kept job %s: %w", name, err)
	}
	return info, nil
}

func (r *Runner) shellInfoPath(name string) string {
	return filepath.Join(r.SpecDir, name+".kept.json")
}

// samePath lists the targets of the binds at the same path inside as on
// the host.
func samePath(ms []spec.Mount) []string {
	var out []string
	for _, m := range ms {
		if (m.Type == spec.MountBind || m.Type == "") && m.Source != "" && filepath.Clean(m.Source) == filepath.Clean(m.Target) {
			out = append(out, filepath.Clean(m.Target))
		}
	}
	return out
}

// within is dir when it is one of roots or below one, else "": the
// caller's directory, when the container has it at the same path.
func within(dir string, roots []string) string {
	if dir == "" {
		return ""
	}
	dir = filepath.Clean(dir)
	for _, r := range roots {
		if rel, err := filepath.Rel(r, dir); err == nil && filepath.IsLocal(rel) || dir == r {
			return dir
		}
	}
	return ""
}
