package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/stintdev/stint/runner/reconcile"
)

// DownCmd removes every container the spec set owns.
type DownCmd struct {
	Paths    []string `arg:"" optional:"" name:"FILE|DIR" type:"existingpath" help:"Spec files or directories naming the spec set."`
	Set      string   `name:"set" placeholder:"NAME" help:"Name the set instead of loading its specs (works while they are invalid or gone)."`
	Parallel int      `short:"j" name:"jobs" default:"4" help:"Work on N containers at once."`
	Volumes  bool     `help:"Also remove the set's volumes (home = \"persist\" homes)."`
}

// Run deletes the set's containers with their volumes, records and logs.
func (c *DownCmd) Run(g *Globals) error {
	ctx, stop := signalContext(g.Stderr)
	defer stop()
	name, lr, err := c.open(ctx, g)
	if err != nil {
		return err
	}
	defer lr.Close()
	actual, err := lr.backend.List(ctx, name)
	if err != nil {
		return listErr(fmt.Errorf("list containers of set %s: %w", name, err))
	}
	actions := reconcile.Down(name, actual)
	outcomes, err := reconcile.Apply(ctx, lr.backend, actions, c.Parallel)
	if rerr := reportOutcomes(g, name, actions, outcomes, err); rerr != nil {
		return rerr
	}
	if err := lr.backend.ForgetSet(name); err != nil {
		return withCode(ExitHost, err)
	}
	if !c.Volumes {
		return nil
	}
	if err := lr.backend.RemoveVolumes(name); err != nil {
		return withCode(ExitHost, err)
	}
	return nil
}

// open opens the backend for the set the specs or --set name: with --set no
// spec is read, so a set whose specs are invalid or gone can still go.
func (c *DownCmd) open(ctx context.Context, g *Globals) (string, *reconcileEnv, error) {
	switch {
	case c.Set != "" && len(c.Paths) > 0:
		return "", nil, withCode(ExitUsage, errors.New("stint down: give spec files or --set NAME, not both"))
	case c.Set != "":
		lr, err := openContainers(ctx, g, nil)
		return c.Set, lr, err
	case len(c.Paths) == 0:
		return "", nil, withCode(ExitUsage, errors.New("stint down: give the set's spec files, or --set NAME"))
	}
	set, lr, err := openReconcile(ctx, g, c.Paths)
	if err != nil {
		return "", nil, err
	}
	return set.Name, lr, nil
}
