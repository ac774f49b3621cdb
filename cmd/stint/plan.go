package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/spec"
)

// ExitChanges is `stint plan`'s exit code when applying would change
// something (like terraform plan -detailed-exitcode's 2, which is taken
// here by bad spec or usage). 0 means nothing would change.
const ExitChanges = 4

// PlanCmd shows what apply would do.
type PlanCmd struct {
	Paths []string `arg:"" name:"FILE|DIR" type:"existingpath" help:"Spec files or directories of one spec set."`
}

// Run prints the plan; the exit code says whether it changes anything.
func (c *PlanCmd) Run(g *Globals) error {
	set, err := loadSet(c.Paths)
	if err != nil {
		return err
	}
	if err := checkRuntimeKeys(g, nil, set.Containers); err != nil {
		return err
	}
	// Only what listing needs (state records, the runtime, stored specs):
	// a plan builds no image and opens no storage pool. With the set, so
	// the plan, too, refuses a set applied from another directory.
	ctx := context.Background()
	h, err := g.openHost(ctx, runner.Options{})
	if err != nil {
		return err
	}
	defer h.Close()
	b, err := h.Containers(ctx, set)
	if err != nil {
		return withCode(ExitHost, err)
	}
	actual, err := b.List(ctx, set.Name)
	if err != nil {
		return listErr(fmt.Errorf("list containers of set %s: %w", set.Name, err))
	}
	actions := reconcile.Plan(set.Containers, set.Name, actual)
	if g.JSON {
		err = writeJSON(g.Stdout, reconcile.NewPlanReport(set.Name, actions))
	} else {
		err = reconcile.WriteText(g.Stdout, set.Name, actions)
	}
	if err != nil {
		return err
	}
	if reconcile.Summarize(actions).Changes() > 0 {
		return withCode(ExitChanges, errors.New(""))
	}
	return nil
}

// listErr reports a failure to list a set's containers: a set owned by
// specs in another directory is the user's to sort out (exit 2), anything
// else is the host's (exit 3).
func listErr(err error) error {
	var owned *reconcile.SetOwnedError
	if errors.As(err, &owned) {
		return withCode(ExitUsage, err)
	}
	return withCode(ExitHost, err)
}

// reconcileEnv is what apply, down and watch share.
type reconcileEnv struct {
	host    *runner.Host
	backend *runner.LongLived
}

func (e *reconcileEnv) Close() { e.host.Close() }

// loadSet loads the spec set; an invalid one is a usage error (exit 2).
func loadSet(paths []string) (*spec.Set, error) {
	set, err := spec.Load(paths, spec.Options{})
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	return set, nil
}

// openReconcile loads the specs and opens the long-lived backend on --root.
func openReconcile(ctx context.Context, g *Globals, paths []string) (*spec.Set, *reconcileEnv, error) {
	set, err := loadSet(paths)
	if err != nil {
		return nil, nil, err
	}
	if err := checkRuntimeKeys(g, nil, set.Containers); err != nil {
		return nil, nil, err
	}
	e, err := openContainers(ctx, g, set)
	if err != nil {
		return nil, nil, err
	}
	return set, e, nil
}

// openContainers opens the Host for containers and its long-lived backend.
func openContainers(ctx context.Context, g *Globals, set *spec.Set) (*reconcileEnv, error) {
	h, err := g.openHost(ctx, runner.Options{Containers: true, Set: set, BuildOutput: g.buildOutput(g.Stderr)})
	if err != nil {
		return nil, err
	}
	b, err := h.Containers(ctx, set)
	if err != nil {
		h.Close()
		return nil, withCode(ExitHost, err)
	}
	return &reconcileEnv{host: h, backend: b}, nil
}
