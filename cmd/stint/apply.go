package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/runner/reconcile"
)

// ApplyCmd reconciles the host to the specs once.
type ApplyCmd struct {
	Paths    []string `arg:"" name:"FILE|DIR" type:"existingpath" help:"Spec files or directories of one spec set."`
	Parallel int      `short:"j" name:"jobs" default:"4" help:"Work on N containers at once."`
}

// applyReport is `stint apply --json`'s output.
type applyReport struct {
	Set      string              `json:"set"`
	Summary  reconcile.Summary   `json:"summary"`
	Outcomes []reconcile.Outcome `json:"outcomes"`
	Failed   int                 `json:"failed"`
}

// Run applies the plan; a failed container is reported by name and makes
// the exit code 3, the others are still done.
func (c *ApplyCmd) Run(g *Globals) error {
	ctx, stop := signalContext(g.Stderr)
	defer stop()
	set, lr, err := openReconcile(ctx, g, c.Paths)
	if err != nil {
		return err
	}
	defer lr.Close()
	actions, outcomes, err := reconcile.Once(ctx, lr.backend, set.Name, set.Containers, c.Parallel)
	if outcomes == nil && err != nil {
		return listErr(err) // Once names the set
	}
	return reportOutcomes(g, set.Name, actions, outcomes, err)
}

// reportOutcomes prints what apply or down did and maps failures to exit 3.
func reportOutcomes(g *Globals, set string, actions []reconcile.Action, outcomes []reconcile.Outcome, err error) error {
	failed := 0
	for _, o := range outcomes {
		if o.Err != nil {
			failed++
		}
	}
	if g.JSON {
		if outcomes == nil {
			outcomes = []reconcile.Outcome{}
		}
		if werr := writeJSON(g.Stdout, applyReport{Set: set, Summary: reconcile.Summarize(actions), Outcomes: outcomes, Failed: failed}); werr != nil {
			return werr
		}
	} else {
		writeOutcomes(g.Stdout, set, actions, outcomes)
	}
	if err != nil {
		if g.JSON {
			return withCode(ExitHost, errors.New(""))
		}
		code := ExitHost
		switch {
		case containersFailed(outcomes):
			code = ExitJobFail // their PID 1 died: the containers' failure, not the host's
		case usageFailed(outcomes):
			code = ExitUsage // the spec asks what its image cannot do
		}
		return withCode(code, fmt.Errorf("stint: %s failed:\n%w", plural(failed, "container"), err))
	}
	return nil
}

// usageFailed reports whether every failure in outcomes is a usage error
// (runner.UsageError: a container on an image with nothing to run, ...).
func usageFailed(outcomes []reconcile.Outcome) bool {
	n := 0
	for _, o := range outcomes {
		if o.Err == nil {
			continue
		}
		var ue *runner.UsageError
		if !errors.As(o.Err, &ue) {
			return false
		}
		n++
	}
	return n > 0
}

// pastTense names what an action did.
var pastTense = map[reconcile.Kind]string{
	reconcile.KindCreate: "created", reconcile.KindStart: "started", reconcile.KindStop: "stopped",
	reconcile.KindUpdate: "updated", reconcile.KindRestart: "restarted", reconcile.KindRecreate: "recreated", reconcile.KindDelete: "deleted",
}

func writeOutcomes(w io.Writer, set string, actions []reconcile.Action, outcomes []reconcile.Outcome) {
	s := reconcile.Summarize(actions)
	if s.Changes() == 0 {
		fmt.Fprintf(w, "No changes: set %q matches its specs (%s).\n", set, plural(s.Nothing, "container"))
		return
	}
	ok := 0
	for _, o := range outcomes {
		a := o.Action
		if !a.Changes() {
			continue
		}
		if o.Err != nil {
			fmt.Fprintf(w, "  !   %s: %s failed: %v\n", a.Name, a.Kind, o.Err)
			continue
		}
		ok++
		fmt.Fprintf(w, "  ok  %s %s", a.Name, pastTense[a.Kind])
		if a.State != "" && a.Kind != reconcile.KindStart && a.Kind != reconcile.KindStop && a.Kind != reconcile.KindRestart {
			fmt.Fprintf(w, " (%s)", a.State)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nApplied %d of %s to set %q.\n", ok, plural(s.Changes(), "change"), set)
}

// containersFailed reports whether every failure in outcomes is a
// container's own (its PID 1 exited right after the start).
func containersFailed(outcomes []reconcile.Outcome) bool {
	n := 0
	for _, o := range outcomes {
		if o.Err == nil {
			continue
		}
		if !errors.Is(o.Err, runner.ErrExited) {
			return false
		}
		n++
	}
	return n > 0
}
