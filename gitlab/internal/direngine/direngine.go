// Package direngine is a gitlab.Engine whose containers are directories and
// whose scripts run on the host: the driver's tests run it under the
// runner harness without LXC, and it runs the enginetest suite.
package direngine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stintdev/stint/gitlab"
)

// Engine keeps its containers as directories under <Root>/containers, each
// with a "monitor" process (a detached sleep) like a real container's, so
// that a monitor holding the caller's stdout would show.
type Engine struct{ Root string }

func (e *Engine) dir(name string) string { return filepath.Join(e.Root, "containers", name) }

func (e *Engine) Remotes(context.Context) ([]string, error) { return []string{"hub"}, nil }

func (e *Engine) HasImage(_ context.Context, ref string) (bool, error) {
	return ref == "busybox" || ref == "debian", nil
}

func (e *Engine) Prepare(ctx context.Context, job gitlab.JobContainer) error {
	names := []string{job.Name}
	for _, s := range job.Services {
		names = append(names, s.Container)
	}
	for _, n := range names {
		if err := os.MkdirAll(e.dir(n), 0o755); err != nil {
			return fmt.Errorf("container %s: %w", n, err)
		}
		if err := e.startMonitor(n); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(e.dir(job.Name), "image"), []byte(job.Image+"\n"), 0o644)
}

// startMonitor starts a process that outlives the call, detached from the
// caller's streams as a container monitor must be.
func (e *Engine) startMonitor(name string) error {
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("container %s: monitor: %w", name, err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	_ = cmd.Process.Release()
	return os.WriteFile(filepath.Join(e.dir(name), "monitor.pid"), []byte(pid), 0o644)
}

func (e *Engine) Exec(ctx context.Context, name string, x gitlab.Exec) (int, error) {
	dir := e.dir(name)
	if _, err := os.Stat(filepath.Join(dir, "monitor.pid")); err != nil {
		return -1, fmt.Errorf("container %s: not running: %w", name, err)
	}
	script := filepath.Join(dir, "rootfs", x.Path)
	if err := os.MkdirAll(filepath.Dir(script), 0o755); err != nil {
		return -1, err
	}
	if err := os.WriteFile(script, x.Script, 0o700); err != nil {
		return -1, err
	}
	argv := append(x.Argv[:len(x.Argv)-1:len(x.Argv)-1], script)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = x.Env, dir, x.Stdout, x.Stderr
	// A cancelled script goes with everything it started, as in a container.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", name, err)
	}
	// Cleanup kills what a script left running, as a container's stop does.
	if f, err := os.OpenFile(filepath.Join(dir, "pgids"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintln(f, cmd.Process.Pid)
		f.Close()
	}
	err := cmd.Wait()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The script is done; something it left in the background still
		// held its output.
		err = nil
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			return code, nil
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", name, err)
	}
	return 0, nil
}

func (e *Engine) Cleanup(_ context.Context, job gitlab.JobContainer, outcome gitlab.Outcome) error {
	names := []string{job.Name}
	for _, s := range job.Services {
		names = append(names, s.Container)
	}
	if pgids, err := os.ReadFile(filepath.Join(e.dir(job.Name), "pgids")); err == nil {
		for _, l := range strings.Fields(string(pgids)) {
			if p, err := strconv.Atoi(l); err == nil {
				_ = syscall.Kill(-p, syscall.SIGKILL)
			}
		}
	}
	for _, n := range names {
		pid, err := os.ReadFile(filepath.Join(e.dir(n), "monitor.pid"))
		if err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.RemoveAll(e.dir(n)); err != nil {
			return fmt.Errorf("remove container %s: %w", n, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(e.Root, "commits.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%s outcome=%s\n", job.Name, outcome)
	return err
}
