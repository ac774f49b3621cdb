package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-multierror"

	"github.com/stintdev/stint/spec"
)

// Backend is what reconciling needs from a container runtime. Containers
// are named by (set, name): the set's name and the spec's container name;
// how that maps to a runtime name is the Backend's business, and so is
// recording ownership (which set made a container, from which Hash).
//
// Lifecycle of one container, as Apply drives it:
//
//	Create ─▶ Start ◀─▶ Stop ─▶ Destroy
//	            ▲         │
//	            └ Update ─┘   (any time; limits and env for the next start)
//
// A restart (KindRestart) is Update, Stop, Start: env and limits reach a
// running container only through a new start.
//
// Every method is called for one container at a time, but methods for
// different containers run concurrently. Each must leave either the old
// state or the new one (rollback on failure), so that the next pass of a
// level-based reconcile can pick up from whatever it finds.
type Backend interface {
	// List returns every container that set owns: those with a record
	// naming the set, with their live status (StatusMissing when the
	// record is there and the container is not). Never one of another set,
	// never one without a record.
	List(ctx context.Context, set string) ([]Observed, error)
	// Create makes a stopped container from c and records it as owned by
	// set with hash (and c, for later diffs). It fails, wrapping ErrExists,
	// when the name is taken by something the set does not own.
	Create(ctx context.Context, set string, c spec.Container, hash string) error
	// Start starts the container, booting its image's init or c.Command as
	// PID 1; a running container is left alone.
	Start(ctx context.Context, set, name string) error
	// Stop stops it, cleanly then by force; a stopped one is left alone.
	Stop(ctx context.Context, set, name string) error
	// Update records c and hash for the existing container: its in-place
	// fields (limits, env) take effect from its next Start.
	Update(ctx context.Context, set string, c spec.Container, hash string) error
	// Destroy stops the container if needed, removes it with its volume
	// and network, then its record. A missing container is not an error.
	Destroy(ctx context.Context, set, name string) error
}

// SetUser is an optional ability of a Backend: it wants the whole loaded
// spec set before a pass (to resolve the set's [image.*] definitions).
// Watch and the CLI call UseSet before every pass when the Backend has it.
type SetUser interface {
	UseSet(*spec.Set)
}

// ErrExists is wrapped by Backend.Create when the name is taken by a
// container that the set does not own.
var ErrExists = errors.New("container name taken by a container the set does not own")

// Outcome is what happened to one Action.
type Outcome struct {
	Action Action `json:"action"`
	Err    error  `json:"-"`
	Error  string `json:"error,omitempty"` // Err's text, for JSON
}

// ContainerError is one container's failure in Apply: it names the
// container and the step that failed.
type ContainerError struct {
	Set, Name string
	Step      string // create, start, stop, update, destroy
	Err       error
}

func (e *ContainerError) Error() string {
	return fmt.Sprintf("container %s/%s: %s: %v", e.Set, e.Name, e.Step, e.Err)
}

func (e *ContainerError) Unwrap() error { return e.Err }

// Apply carries out actions on b, at most parallelism at a time (at least
// one). Actions concern distinct containers, so they are independent: a
// failure on one does not stop the others. Unchanged actions call nothing
// on b. It returns one Outcome per action, in order, and an error listing
// every failure (*ContainerError values), or nil.
func Apply(ctx context.Context, b Backend, actions []Action, parallelism int) ([]Outcome, error) {
	parallelism = max(parallelism, 1)
	out := make([]Outcome, len(actions))
	sem := make(chan struct{}, parallelism)
	var wg sync.WaitGroup
	for i, a := range actions {
		out[i].Action = a
		if !a.Changes() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i].Err = &ContainerError{Set: a.Set, Name: a.Name, Step: string(a.Kind), Err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			if err := applyOne(ctx, b, a); err != nil {
				out[i].Err = err
			}
		}()
	}
	wg.Wait()
	var all *multierror.Error
	for i := range out {
		if out[i].Err != nil {
			out[i].Error = out[i].Err.Error()
			all = multierror.Append(all, out[i].Err)
		}
	}
	if all != nil {
		all.ErrorFormat = listErrors
	}
	return out, all.ErrorOrNil()
}

// listErrors formats Apply's errors one per line, without multierror's
// bullet header, so a CLI can print them as they are.
func listErrors(errs []error) string {
	s := ""
	for i, e := range errs {
		if i > 0 {
			s += "\n"
		}
		s += e.Error()
	}
	return s
}

// applyOne does a's steps in order; the first failing step stops them.
func applyOne(ctx context.Context, b Backend, a Action) error {
	step := func(name string, err error) error {
		if err != nil {
			return &ContainerError{Set: a.Set, Name: a.Name, Step: name, Err: err}
		}
		return nil
	}
	settle := func(stopped bool) error {
		switch {
		case a.State == StatusRunning && (stopped || a.From != StatusRunning):
			return step("start", b.Start(ctx, a.Set, a.Name))
		case a.State == StatusStopped && !stopped && a.From == StatusRunning:
			return step("stop", b.Stop(ctx, a.Set, a.Name))
		}
		return nil
	}
	switch a.Kind {
	case KindCreate:
		if err := step("create", b.Create(ctx, a.Set, *a.Desired, a.Hash)); err != nil {
			return err
		}
		return settle(true)
	case KindRecreate:
		if err := step("destroy", b.Destroy(ctx, a.Set, a.Name)); err != nil {
			return err
		}
		if err := step("create", b.Create(ctx, a.Set, *a.Desired, a.Hash)); err != nil {
			return err
		}
		return settle(true)
	case KindUpdate:
		if err := step("update", b.Update(ctx, a.Set, *a.Desired, a.Hash)); err != nil {
			return err
		}
		return settle(false)
	case KindRestart:
		if err := step("update", b.Update(ctx, a.Set, *a.Desired, a.Hash)); err != nil {
			return err
		}
		if err := step("stop", b.Stop(ctx, a.Set, a.Name)); err != nil {
			return err
		}
		return step("start", b.Start(ctx, a.Set, a.Name))
	case KindStart:
		return step("start", b.Start(ctx, a.Set, a.Name))
	case KindStop:
		return step("stop", b.Stop(ctx, a.Set, a.Name))
	case KindDelete:
		return step("destroy", b.Destroy(ctx, a.Set, a.Name))
	}
	return nil
}

// Down plans the removal of everything set owns: one delete per container.
func Down(set string, actual []Observed) []Action {
	return Plan(nil, set, actual)
}

// Once is one level-based pass: list what set owns on b, plan against
// desired, apply. It returns the plan and its outcomes; the error is a
// listing error (nothing done) or Apply's.
func Once(ctx context.Context, b Backend, set string, desired []spec.Container, parallelism int) ([]Action, []Outcome, error) {
	actual, err := b.List(ctx, set)
	if err != nil {
		return nil, nil, fmt.Errorf("list containers of set %s: %w", set, err)
	}
	actions := Plan(desired, set, actual)
	out, err := Apply(ctx, b, actions, parallelism)
	return actions, out, err
}
