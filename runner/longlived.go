package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"

	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
	"github.com/stintdev/stint/storage"
)

// This file exposes the job pipeline's steps to the reconciler of
// long-lived containers (runner/reconcile), which drives them itself: a
// long-lived container outlives the process that made it, so it cannot use
// RunJob's create-run-teardown in one call.

// CloneImage resolves image ref with images (building or importing it when
// needed), makes its golden volume once, and clones it into volume id: the
// same image → golden → clone steps as a job's.
func (r *Runner) CloneImage(ctx context.Context, images ImageResolver, ref string, privileged bool, id string) (storage.Volume, Image, error) {
	img, err := images.ResolveImage(ctx, ref)
	if err != nil {
		return storage.Volume{}, Image{}, fmt.Errorf("image %s: %w", ref, err)
	}
	golden, err := r.ensureGolden(ctx, img, privileged)
	if err != nil {
		return storage.Volume{}, Image{}, err
	}
	vol, err := r.Storage.Clone(ctx, golden.ID, id)
	if err != nil {
		return storage.Volume{}, Image{}, fmt.Errorf("clone %s from %s: %w", id, golden.ID, err)
	}
	return vol, img, nil
}

// Teardown removes everything the record held by h names (container,
// mounts, clone volume), then the record; on failure it keeps the record,
// unlocked, for gc to retry.
func (r *Runner) Teardown(ctx context.Context, h *state.Handle) error {
	return r.teardown(ctx, h)
}

// NetworkStarted checks, after the lease's container started, that its
// bridge network is in place (its veth on the bridge); nothing for a nil
// lease (modes none and host).
func (r *Runner) NetworkStarted(ctx context.Context, lease *stintnet.Lease) error {
	if lease == nil || r.Net == nil {
		return nil
	}
	return r.Net.Started(ctx, lease, 0)
}

// findContainer is the record among recs of long-lived container name:
// SET.NAME (its runtime name), or NAME when only one set has it.
func findContainer(recs []state.Record, name string) (state.Record, error) {
	var match []state.Record
	for _, r := range recs {
		if r.Kind == state.KindContainer && (r.Name == name || reconcile.SpecName(r.Name) == name) {
			match = append(match, r)
		}
	}
	switch len(match) {
	case 0:
		return state.Record{}, fmt.Errorf("container %s: %w", name, ErrNoContainer)
	case 1:
		return match[0], nil
	}
	names := make([]string, len(match))
	for i, r := range match {
		names[i] = r.Name
	}
	return state.Record{}, &AmbiguousNameError{Name: name, Matches: names}
}

// Find names long-lived container name (SET.NAME, or NAME when only one
// set has it) by its set and its spec name. It fails with ErrNoContainer
// or an *AmbiguousNameError.
func (b *LongLived) Find(name string) (set, specName string, err error) {
	if b.remote != nil {
		return b.remote.find(context.Background(), name)
	}
	recs, err := b.Records()
	if err != nil {
		return "", "", err
	}
	r, err := findContainer(recs, name)
	if err != nil {
		return "", "", err
	}
	return r.Set, reconcile.SpecName(r.Name), nil
}

// Restart stops container name of set and starts it again from its
// stored spec (so with the env and limits an apply recorded since); a
// stopped one is started.
func (b *LongLived) Restart(ctx context.Context, set, name string) error {
	if err := b.Stop(ctx, set, name); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	if err := b.Start(ctx, set, name); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return nil
}

// startedPath keeps the spec a running container was last started from:
// what it really runs with, when env or limits were recorded since
// (reconcile.Observed.Started).
func (b *LongLived) startedPath(rtName string) string {
	return filepath.Join(b.SpecDir, rtName+".started.json")
}

func (b *LongLived) writeStarted(rtName string, c spec.Container) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(b.startedPath(rtName), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("container %s: started spec: %w", rtName, err)
	}
	return nil
}

// readStarted is nil when unknown (started by a stint before this record
// existed, or unreadable): the plan then takes the stored spec as running.
func (b *LongLived) readStarted(rtName string) *spec.Container {
	data, err := os.ReadFile(b.startedPath(rtName))
	if err != nil {
		return nil
	}
	var c spec.Container
	if json.Unmarshal(data, &c) != nil {
		return nil
	}
	return &c
}

// removeLongLivedFiles removes what stint keeps of long-lived container
// rtName beside its record: in specDir its stored, started and script
// specs and its host user, in logDir its console log, in agentDir its agent
// directory (the set's home volume stays: down --volumes removes it). An
// empty directory is skipped. Both Destroy and a gc of the record (one
// only its name is left of) call it, so that nothing of it stays.
func removeLongLivedFiles(specDir, logDir, agentDir, rtName string) error {
	b := &LongLived{SpecDir: specDir, LogDir: logDir}
	var paths []string
	if specDir != "" {
		paths = append(paths, b.specPath(rtName), b.scriptPath(rtName), b.startedPath(rtName), b.userPath(rtName))
	}
	if logDir != "" {
		paths = append(paths, b.ConsoleLog(rtName))
	}
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if agentDir != "" {
		if err := os.RemoveAll(filepath.Join(agentDir, rtName)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
