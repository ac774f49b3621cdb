package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/stintdev/stint/runner"
)

// RestartCmd stops long-lived containers and starts them again.
type RestartCmd struct {
	Names []string `arg:"" name:"NAME" help:"Containers: SET.NAME, or NAME when only one set has it."`
}

// restartReport is `stint restart --json`'s output.
type restartReport struct {
	Restarted []string `json:"restarted"`
	Failed    []string `json:"failed,omitempty"`
}

// Run restarts each container from its stored spec (the env and limits an
// apply recorded last); a stopped one is started. It needs no spec files.
func (c *RestartCmd) Run(g *Globals) error {
	ctx, stop := signalContext(g.Stderr)
	defer stop()
	lr, err := openContainers(ctx, g, nil)
	if err != nil {
		return err
	}
	defer lr.Close()
	type target struct{ set, name, full string }
	var targets []target
	for _, n := range c.Names {
		set, name, err := lr.backend.Find(n)
		var amb *runner.AmbiguousNameError
		switch {
		case errors.Is(err, runner.ErrNoContainer):
			return withCode(ExitUsage, fmt.Errorf("stint restart: no long-lived container %q (see stint ps)", n))
		case errors.As(err, &amb):
			return withCode(ExitUsage, fmt.Errorf("stint restart: %q is ambiguous: %s", n, strings.Join(amb.Matches, ", ")))
		case err != nil:
			return withCode(ExitHost, err)
		}
		targets = append(targets, target{set, name, set + "." + name})
	}
	rep := restartReport{Restarted: []string{}}
	var errs []error
	for _, t := range targets {
		if err := lr.backend.Restart(ctx, t.set, t.name); err != nil {
			rep.Failed = append(rep.Failed, t.full)
			errs = append(errs, err)
			continue
		}
		rep.Restarted = append(rep.Restarted, t.full)
		if !g.JSON {
			fmt.Fprintf(g.Stdout, "  ok  %s restarted\n", t.full)
		}
	}
	if g.JSON {
		if err := writeJSON(g.Stdout, rep); err != nil {
			return err
		}
	}
	if len(errs) == 0 {
		return nil
	}
	code := ExitJobFail // every PID 1 died at once: the containers' failure
	for _, err := range errs {
		if !errors.Is(err, runner.ErrExited) {
			code = ExitHost
		}
	}
	return withCode(code, errors.Join(errs...))
}
