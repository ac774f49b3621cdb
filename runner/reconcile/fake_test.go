package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/stintdev/stint/spec"
)

// fakeBackend is an in-memory Backend for the pure-logic tests of Apply
// and the Watcher: it keeps containers per (set, name), records every
// mutating call, and fails calls for names listed in failOn.
type fakeBackend struct {
	mu       sync.Mutex
	ctrs     map[string]*Observed // key set/name
	calls    []string             // "create p/web", ...
	failOn   map[string]error     // name -> error for every mutating call
	listErr  error
	delay    time.Duration
	running  int // calls in flight
	maxInFly int
}

func newFake() *fakeBackend {
	return &fakeBackend{ctrs: map[string]*Observed{}, failOn: map[string]error{}}
}

func (f *fakeBackend) enter(op, set, name string) error {
	f.mu.Lock()
	f.calls = append(f.calls, op+" "+set+"/"+name)
	f.running++
	f.maxInFly = max(f.maxInFly, f.running)
	err := f.failOn[name]
	f.mu.Unlock()
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	return err
}

func (f *fakeBackend) leave() {
	f.mu.Lock()
	f.running--
	f.mu.Unlock()
}

func (f *fakeBackend) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeBackend) ResetCalls() {
	f.mu.Lock()
	f.calls = nil
	f.mu.Unlock()
}

func (f *fakeBackend) List(_ context.Context, set string) ([]Observed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []Observed
	for _, o := range f.ctrs {
		if o.Set == set {
			out = append(out, *o)
		}
	}
	return out, nil
}

func (f *fakeBackend) Create(_ context.Context, set string, c spec.Container, hash string) error {
	defer f.leave()
	if err := f.enter("create", set, c.Name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.ctrs[set+"/"+c.Name]; ok {
		return fmt.Errorf("create %s: %w", c.Name, ErrExists)
	}
	f.ctrs[set+"/"+c.Name] = &Observed{Name: c.Name, Set: set, Hash: hash, Status: StatusStopped, Spec: &c}
	return nil
}

func (f *fakeBackend) setStatus(op, set, name string, st Status) error {
	defer f.leave()
	if err := f.enter(op, set, name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.ctrs[set+"/"+name]
	if !ok || o.Status == StatusMissing {
		return errors.New(op + " " + name + ": no such container")
	}
	o.Status = st
	return nil
}

// Start records the spec it starts from, as LongLived does.
func (f *fakeBackend) Start(_ context.Context, set, name string) error {
	if err := f.setStatus("start", set, name, StatusRunning); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.ctrs[set+"/"+name]
	o.Started = o.Spec
	return nil
}

func (f *fakeBackend) Stop(_ context.Context, set, name string) error {
	return f.setStatus("stop", set, name, StatusStopped)
}

func (f *fakeBackend) Update(_ context.Context, set string, c spec.Container, hash string) error {
	defer f.leave()
	if err := f.enter("update", set, c.Name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.ctrs[set+"/"+c.Name]
	if !ok {
		return errors.New("update " + c.Name + ": no such container")
	}
	o.Hash, o.Spec = hash, &c
	return nil
}

func (f *fakeBackend) Destroy(_ context.Context, set, name string) error {
	defer f.leave()
	if err := f.enter("destroy", set, name); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ctrs, set+"/"+name)
	return nil
}

// status returns a container's status, or "" when it has none.
func (f *fakeBackend) status(set, name string) Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, ok := f.ctrs[set+"/"+name]; ok {
		return o.Status
	}
	return ""
}

// put sets a container's status by hand (drift).
func (f *fakeBackend) put(set, name string, st Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctrs[set+"/"+name].Status = st
}
