package runner

import (
	"context"
	"fmt"

	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/state"
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
