package main

import (
	"fmt"

	"github.com/stintdev/stint/runner/reconcile"
)

// DownCmd removes every container the spec set owns.
type DownCmd struct {
	Paths    []string `arg:"" name:"FILE|DIR" type:"existingpath" help:"Spec files or directories naming the spec set."`
	Parallel int      `short:"j" name:"jobs" default:"4" help:"Work on N containers at once."`
	Volumes  bool     `help:"Also remove the set's volumes (home = \"persist\" homes)."`
}

// Run deletes the set's containers with their volumes, records and logs.
func (c *DownCmd) Run(g *Globals) error {
	ctx, stop := signalContext(g.Stderr)
	defer stop()
	set, lr, err := openReconcile(ctx, g, c.Paths)
	if err != nil {
		return err
	}
	defer lr.Close()
	actual, err := lr.backend.List(ctx, set.Name)
	if err != nil {
		return listErr(fmt.Errorf("list containers of set %s: %w", set.Name, err))
	}
	actions := reconcile.Down(set.Name, actual)
	outcomes, err := reconcile.Apply(ctx, lr.backend, actions, c.Parallel)
	if rerr := reportOutcomes(g, set.Name, actions, outcomes, err); rerr != nil || !c.Volumes {
		return rerr
	}
	if err := lr.backend.RemoveVolumes(set.Name); err != nil {
		return withCode(ExitHost, err)
	}
	return nil
}
