package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/stintdev/stint/runner/state"
)

// LogsCmd prints a long-lived container's console log: what its PID 1 (the
// command, or the image's init) wrote.
type LogsCmd struct {
	Name   string `arg:"" help:"The container: SET.NAME, or NAME when only one set has it."`
	Follow bool   `short:"f" help:"Keep printing what is appended, until interrupted."`
}

// Run prints the log.
func (c *LogsCmd) Run(g *Globals) error {
	root, err := g.openRoot(false)
	if err != nil {
		return withCode(ExitHost, err)
	}
	st, err := state.Open(filepath.Join(root, "state"))
	if err != nil {
		return withCode(ExitHost, err)
	}
	recs, err := st.List()
	if err != nil {
		return withCode(ExitHost, err)
	}
	var match []string
	for _, r := range recs {
		if r.Kind != state.KindContainer {
			continue
		}
		if r.Name == c.Name || r.Name[strings.LastIndexByte(r.Name, '.')+1:] == c.Name {
			match = append(match, r.Name)
		}
	}
	switch len(match) {
	case 0:
		return withCode(ExitUsage, fmt.Errorf("stint logs: no long-lived container %q (see stint ps)", c.Name))
	case 1:
	default:
		return withCode(ExitUsage, fmt.Errorf("stint logs: %q is ambiguous: %s", c.Name, strings.Join(match, ", ")))
	}
	path := filepath.Join(g.Root, "logs", match[0]+".log")
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
