// Package containertest tests container runtimes: Suite runs the same
// lifecycle tests on any container.Runtime (as storagetest does for storage
// drivers), and Fake is an in-memory Runtime with scripted exit statuses and
// injectable failures, on which the job engine is unit tested without LXC.
package containertest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"sync"
	"syscall"

	"github.com/stintdev/stint/runner/container"
)

// Op names a Runtime call, for Fake's failure injection and call counts.
type Op string

// Runtime calls.
const (
	OpCreate  Op = "create"
	OpStart   Op = "start"
	OpExec    Op = "exec"
	OpStop    Op = "stop"
	OpDestroy Op = "destroy"
	OpState   Op = "state"
	OpList    Op = "list"
	OpFreeze  Op = "freeze"
	OpRootDir Op = "rootdir"
)

// ExecFunc scripts how a command in container c ends. It may block until
// c.Stopped() is closed (a command killed with its container) or ctx is done.
type ExecFunc func(ctx context.Context, c *FakeContainer, opts container.ExecOptions) (container.ExitStatus, error)

// Fake is an in-memory container.Runtime. Without a Script it runs each command
// as a host process (no isolation at all: the commands of the conformance
// suite, and nothing else), killed by Stop like a container's processes.
// It is a RootDirer (the Config's Root.Dir) and a Freezer.
type Fake struct {
	// Script, when set, decides how every command ends instead of running it.
	Script ExecFunc
	// Fail, when set, is asked before every call; an error it returns is
	// the call's result (before anything changes).
	Fail func(op Op, name string) error

	mu         sync.Mutex
	containers map[string]*FakeContainer
	calls      map[Op]map[string]int
}

// FakeContainer is one container of a Fake.
type FakeContainer struct {
	Name   string
	Config container.Config

	mu      sync.Mutex
	state   container.State
	stopped chan struct{}
	frozen  bool
	procs   map[*exec.Cmd]bool
}

var (
	_ container.Runtime   = (*Fake)(nil)
	_ container.RootDirer = (*Fake)(nil)
	_ container.Freezer   = (*Fake)(nil)
)

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{containers: map[string]*FakeContainer{}, calls: map[Op]map[string]int{}}
}

// Stopped is closed when the container stops (or was never started).
func (c *FakeContainer) Stopped() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// Frozen reports whether Freeze was called since the last Start.
func (c *FakeContainer) Frozen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frozen
}

// Calls returns how often op was called for name ("" for List).
func (f *Fake) Calls(op Op, name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op][name]
}

// Container returns container name, or nil.
func (f *Fake) Container(name string) *FakeContainer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.containers[name]
}

// enter counts a call and asks Fail about it.
func (f *Fake) enter(op Op, name string) error {
	f.mu.Lock()
	if f.calls[op] == nil {
		f.calls[op] = map[string]int{}
	}
	f.calls[op][name]++
	fail := f.Fail
	f.mu.Unlock()
	if fail != nil {
		if err := fail(op, name); err != nil {
			return fmt.Errorf("%s container %s: %w", op, name, err)
		}
	}
	return nil
}

func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// Create implements container.Runtime.
func (f *Fake) Create(_ context.Context, name string, cfg container.Config) error {
	if err := f.enter(OpCreate, name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.containers[name]; ok {
		return fmt.Errorf("create container %s: %w", name, container.ErrExists)
	}
	for _, m := range cfg.Mounts {
		if k := m.Kind(); k != container.MountBind && k != container.MountTmpfs {
			return fmt.Errorf("create container %s: mount %s of type %s: %w", name, m.Target, k, container.ErrUnsupported)
		}
	}
	f.containers[name] = &FakeContainer{Name: name, Config: cfg, state: container.StateStopped,
		stopped: closedChan(), procs: map[*exec.Cmd]bool{}}
	return nil
}

func (f *Fake) get(op Op, name string) (*FakeContainer, error) {
	if err := f.enter(op, name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[name]
	if !ok {
		return nil, fmt.Errorf("%s container %s: %w", op, name, container.ErrNotFound)
	}
	return c, nil
}

// Start implements container.Runtime.
func (f *Fake) Start(_ context.Context, name string) error {
	c, err := f.get(OpStart, name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != container.StateRunning {
		c.state, c.stopped, c.frozen = container.StateRunning, make(chan struct{}), false
	}
	return nil
}

// Exec implements container.Runtime.
func (f *Fake) Exec(ctx context.Context, name string, opts container.ExecOptions) (container.ExitStatus, error) {
	c, err := f.get(OpExec, name)
	if err != nil {
		return container.ExitStatus{}, err
	}
	c.mu.Lock()
	running := c.state == container.StateRunning
	c.mu.Unlock()
	if !running {
		return container.ExitStatus{}, fmt.Errorf("exec in container %s: %w", name, container.ErrNotRunning)
	}
	if len(opts.Argv) == 0 {
		return container.ExitStatus{}, fmt.Errorf("exec in container %s: no command", name)
	}
	if f.Script != nil {
		return f.Script(ctx, c, opts)
	}
	return c.hostExec(ctx, opts)
}

// hostExec runs the command as a host process with exactly opts.Env.
func (c *FakeContainer) hostExec(ctx context.Context, opts container.ExecOptions) (container.ExitStatus, error) {
	cmd := exec.Command(opts.Argv[0], opts.Argv[1:]...)
	cmd.Env = slices.Clone(opts.Env)
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = opts.Cwd
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.mu.Lock()
	if err := cmd.Start(); err != nil {
		c.mu.Unlock()
		return container.ExitStatus{}, fmt.Errorf("exec in container %s: %w", c.Name, err)
	}
	c.procs[cmd] = true
	c.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = ctx.Err()
	}
	c.mu.Lock()
	delete(c.procs, cmd)
	c.mu.Unlock()
	if ctx.Err() != nil {
		return container.ExitStatus{}, fmt.Errorf("exec in container %s: %w", c.Name, ctx.Err())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return container.ExitStatus{}, fmt.Errorf("exec in container %s: %w", c.Name, err)
	}
	return container.StatusFromWait(cmd.ProcessState.Sys().(syscall.WaitStatus)), nil
}

// Stop implements container.Runtime: every running command is killed.
func (f *Fake) Stop(_ context.Context, name string) error {
	if err := f.enter(OpStop, name); err != nil {
		return err
	}
	f.mu.Lock()
	c := f.containers[name]
	f.mu.Unlock()
	if c == nil {
		return nil
	}
	c.stop()
	return nil
}

func (c *FakeContainer) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == container.StateRunning {
		close(c.stopped)
	}
	c.state = container.StateStopped
	for cmd := range c.procs {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Destroy implements container.Runtime.
func (f *Fake) Destroy(_ context.Context, name string) error {
	if err := f.enter(OpDestroy, name); err != nil {
		return err
	}
	f.mu.Lock()
	c := f.containers[name]
	delete(f.containers, name)
	f.mu.Unlock()
	if c != nil {
		c.stop()
	}
	return nil
}

// State implements container.Runtime.
func (f *Fake) State(_ context.Context, name string) (container.State, error) {
	if err := f.enter(OpState, name); err != nil {
		return "", err
	}
	f.mu.Lock()
	c := f.containers[name]
	f.mu.Unlock()
	if c == nil {
		return container.StateAbsent, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state, nil
}

// List implements container.Runtime.
func (f *Fake) List(context.Context) ([]string, error) {
	if err := f.enter(OpList, ""); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(f.containers))
	for n := range f.containers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// RootDir implements container.RootDirer: the Config's root directory.
func (f *Fake) RootDir(_ context.Context, name string) (string, error) {
	c, err := f.get(OpRootDir, name)
	if err != nil {
		return "", err
	}
	if c.Config.Root.Dir == "" {
		return "", fmt.Errorf("root of container %s: no root directory", name)
	}
	return c.Config.Root.Dir, nil
}

// Freeze implements container.Freezer.
func (f *Fake) Freeze(_ context.Context, name string) error {
	c, err := f.get(OpFreeze, name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != container.StateRunning {
		return fmt.Errorf("freeze container %s: %w", name, container.ErrNotRunning)
	}
	c.frozen = true
	return nil
}

// Exit returns an ExecFunc that ends every command with the statuses given,
// in order (the last one repeats), without running anything.
func Exit(statuses ...container.ExitStatus) ExecFunc {
	var mu sync.Mutex
	i := 0
	return func(context.Context, *FakeContainer, container.ExecOptions) (container.ExitStatus, error) {
		mu.Lock()
		defer mu.Unlock()
		st := statuses[min(i, len(statuses)-1)]
		i++
		return st, nil
	}
}

// Hang is an ExecFunc whose command runs until its container stops (then it
// was killed: SIGKILL) or ctx is done.
func Hang(ctx context.Context, c *FakeContainer, _ container.ExecOptions) (container.ExitStatus, error) {
	select {
	case <-c.Stopped():
		return container.ExitStatus{Code: 128 + int(syscall.SIGKILL), Signal: syscall.SIGKILL}, nil
	case <-ctx.Done():
		return container.ExitStatus{}, ctx.Err()
	}
}
