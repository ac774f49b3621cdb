package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/runner/lxcrt"
	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/runner/state"
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
	b, err := openObserver(g)
	if err != nil {
		return withCode(ExitHost, err)
	}
	b.UseSet(set) // so the plan, too, refuses a set applied from another directory
	actual, err := b.List(context.Background(), set.Name)
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

// reconcileEnv is what plan, apply, down and watch share.
type reconcileEnv struct {
	env     *env
	backend *reconcile.RuntimeBackend
}

func (e *reconcileEnv) Close() { e.env.Close() }

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
	e, err := openEnv(ctx, g, set)
	if err != nil {
		return nil, nil, withCode(ExitHost, err)
	}
	b := newBackend(g, e)
	b.UseSet(set)
	return set, &reconcileEnv{env: e, backend: b}, nil
}

// openObserver opens only what listing needs (state records, the
// runtime, stored specs): a plan builds no image and opens no storage pool.
func openObserver(g *Globals) (*reconcile.RuntimeBackend, error) {
	root, err := g.openRoot(false)
	if err != nil {
		return nil, err
	}
	st, err := state.Open(filepath.Join(root, "state"))
	if err != nil {
		return nil, err
	}
	rt, err := lxcrt.New(filepath.Join(g.Root, "containers"))
	if err != nil {
		return nil, err
	}
	return &reconcile.RuntimeBackend{
		Runner:  &runner.Runner{Runtime: rt, State: st},
		SpecDir: filepath.Join(g.Root, "reconcile"),
		LogDir:  filepath.Join(g.Root, "logs"),
	}, nil
}

func newBackend(g *Globals, e *env) *reconcile.RuntimeBackend {
	return &reconcile.RuntimeBackend{
		Runner: e.runner,
		Images: func(s *spec.Set) runner.ImageResolver {
			return &runner.StoreImages{Store: e.images, Set: s, Recipes: e.runner}
		},
		SpecDir: filepath.Join(g.Root, "reconcile"),
		LogDir:  filepath.Join(g.Root, "logs"),
	}
}
