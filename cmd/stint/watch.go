package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/spec"
)

// WatchCmd reconciles the host to the specs on every change and on drift.
type WatchCmd struct {
	Paths    []string      `arg:"" name:"FILE|DIR" type:"existingpath" help:"Spec files or directories of one spec set."`
	Resync   time.Duration `default:"30s" help:"Also reconcile this often, to undo drift (containers stopped or deleted by hand)."`
	Debounce time.Duration `default:"300ms" help:"Wait this long after the last change of a file before reconciling."`
	Parallel int           `short:"j" name:"jobs" default:"4" help:"Work on N containers at once."`
}

// Run watches until SIGINT or SIGTERM, then leaves the containers running.
func (c *WatchCmd) Run(g *Globals) error {
	// The first load decides the set and the storage; an invalid spec at
	// start is a usage error, later ones are reported and waited out.
	set, err := loadSet(c.Paths)
	if err != nil {
		return err
	}
	if err := checkRuntimeKeys(g, nil, set.Containers); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	e, err := openContainers(ctx, g, set)
	if err != nil {
		return err
	}
	defer e.Close()
	w := &reconcile.Watcher{
		Paths:       c.Paths,
		Load:        func() (*spec.Set, error) { return reconcile.LoadSpecs(c.Paths, spec.Options{}) },
		Backend:     e.backend,
		Parallelism: c.Parallel,
		Resync:      c.Resync,
		Debounce:    c.Debounce,
		Report:      func(p reconcile.Pass) { writePass(g, p) },
	}
	if !g.JSON {
		fmt.Fprintf(g.Stderr, "stint: watching %s (set %q, resync every %s); SIGTERM stops watching, containers keep running\n",
			strings.Join(c.Paths, " "), set.Name, c.Resync)
	}
	if err := w.Run(ctx); err != nil {
		return withCode(ExitHost, err)
	}
	if !g.JSON {
		fmt.Fprintln(g.Stderr, "stint: stopped watching; containers left as they are")
	}
	return nil
}

// writePass prints one reconcile pass: a JSON line, or text when it did
// something or failed (quiet resyncs print nothing).
func writePass(g *Globals, p reconcile.Pass) {
	if g.JSON {
		if b, err := jsonLine(struct {
			Time time.Time `json:"time"`
			reconcile.Pass
		}{time.Now().UTC(), p}); err == nil {
			_, _ = g.Stdout.Write(b)
		}
		return
	}
	writePassText(g.Stdout, g.Stderr, p)
}

func writePassText(out, errw io.Writer, p reconcile.Pass) {
	stamp := time.Now().Format("15:04:05")
	why := strings.Join(p.Triggers, ", ")
	switch {
	case p.Invalid:
		fmt.Fprintf(errw, "%s invalid spec (%s); nothing changed, waiting for the files to change:\n%v\n", stamp, why, p.Err)
		return
	case p.Err != nil && p.Actions == nil:
		fmt.Fprintf(errw, "%s reconcile failed (%s), retrying in %s: %v\n", stamp, why, p.RetryIn, p.Err)
		return
	}
	if reconcile.Summarize(p.Actions).Changes() == 0 {
		return
	}
	fmt.Fprintf(out, "%s reconciling set %q (%s)\n", stamp, p.Set, why)
	writeOutcomes(out, p.Set, p.Actions, p.Outcomes)
	if p.Err != nil {
		fmt.Fprintf(errw, "%s retrying failed containers in %s\n", stamp, p.RetryIn)
	}
}
