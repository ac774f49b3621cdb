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
)

// LogsCmd prints a long-lived container's console log: what its PID 1 (the
// command, or the image's init) wrote.
type LogsCmd struct {
	Name   string `arg:"" help:"The container: SET.NAME, or NAME when only one set has it."`
	Follow bool   `short:"f" help:"Keep printing what is appended, until interrupted."`
}

// Run prints the log.
func (c *LogsCmd) Run(g *Globals) error {
	h, err := g.openHost(context.Background(), runner.Options{})
	if err != nil {
		return err
	}
	defer h.Close()
	path, err := h.ConsoleLog(c.Name)
	var amb *runner.AmbiguousNameError
	switch {
	case errors.Is(err, runner.ErrNoContainer):
		return withCode(ExitUsage, fmt.Errorf("stint logs: no long-lived container %q (see stint ps)", c.Name))
	case errors.As(err, &amb):
		return withCode(ExitUsage, fmt.Errorf("stint logs: %q is ambiguous: %s", c.Name, strings.Join(amb.Matches, ", ")))
	case err != nil:
		return withCode(ExitHost, err)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // it has not written anything yet
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
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
		if _, err := io.Copy(g.Stdout, f); err != nil {
			return withCode(ExitHost, err)
		}
	}
}
