package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/runner/container"
)

// LogsCmd prints a long-lived container's console log (what its PID 1
// wrote) or a job's log (its lines' output and the artifacts report).
type LogsCmd struct {
	Name   string `arg:"" help:"A long-lived container (SET.NAME, or NAME when only one set has it), a job (its newest log: test, test[go=1.22]) or a job's container (stint-test-1a2b3c4d)."`
	Follow bool   `short:"f" help:"Keep printing what is appended: until the job ends, or for a container until interrupted."`
}

// Run prints the log.
func (c *LogsCmd) Run(g *Globals) error {
	h, err := g.openHost(context.Background(), runner.Options{})
	if err != nil {
		return err
	}
	defer h.Close()
	var path string
	var con *runner.RemoteConsole
	if g.Remote != "" {
		// A remote's long-lived containers keep their console there.
		con, err = h.RemoteConsole(context.Background(), c.Name)
	} else {
		path, err = h.ConsoleLog(c.Name)
	}
	var amb *runner.AmbiguousNameError
	switch {
	case errors.Is(err, runner.ErrNoContainer):
		return c.jobLog(g, h)
	case errors.As(err, &amb):
		return withCode(ExitUsage, fmt.Errorf("stint logs: %q is ambiguous: %s", c.Name, strings.Join(amb.Matches, ", ")))
	case err != nil:
		return withCode(ExitHost, err)
	}
	if con != nil {
		return c.printRemote(g, con)
	}
	return c.print(g, path, nil)
}

// printRemote prints a remote container's console log as LXD hands it
// out (see runner.RemoteConsole): with --follow it asks again every
// followEvery and prints what is new, until a signal, or the container
// stopped or is gone.
func (c *LogsCmd) printRemote(g *Globals, con *runner.RemoteConsole) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	for round := 0; ; round++ {
		b, running, err := con.Read(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, container.ErrNotFound) && round > 0:
			return nil // deleted while followed
		case err != nil:
			return hostCode(err)
		case round > 0 && !running:
			return nil // stopped: LXD may hand out what was printed already
		}
		if _, err := g.Stdout.Write(b); err != nil {
			return withCode(ExitHost, err)
		}
		if !c.Follow || !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followEvery):
		}
	}
}

// followEvery is how often --follow reads a remote console log again.
const followEvery = 500 * time.Millisecond

// jobLog prints the newest log of the job c.Name, following it while the
// job runs.
func (c *LogsCmd) jobLog(g *Globals, h *runner.Host) error {
	jl, err := h.JobLog(c.Name)
	if errors.Is(err, runner.ErrNoLog) {
		return withCode(ExitUsage, fmt.Errorf("stint logs: no long-lived container and no job log named %q (see stint ps; job logs are kept for `stint gc --keep-logs`, 7 days by default)", c.Name))
	}
	if err != nil {
		return withCode(ExitHost, err)
	}
	return c.print(g, jl.Path, func() bool { return h.JobRunning(jl.Container) })
}

// print copies the log at path to stdout; with --follow it goes on
// copying what is appended until running (nil: always) says the writer
// is gone, or a signal.
func (c *LogsCmd) print(g *Globals, path string, running func() bool) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && running == nil {
		return nil // the container has not written anything yet
	}
	if err != nil {
		return withCode(ExitHost, err)
	}
	defer f.Close()
	if _, err := io.Copy(g.Stdout, f); err != nil {
		return withCode(ExitHost, err)
	}
	if !c.Follow {
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	for {
		// Asked before the copy: what was written before the job ended
		// is printed by this round's copy.
		done := running != nil && !running()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
		if _, err := io.Copy(g.Stdout, f); err != nil {
			return withCode(ExitHost, err)
		}
		if done {
			return nil
		}
	}
}
