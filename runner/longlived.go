package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/container"
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

// ContainerConfig is the runtime Config of long-lived container c on rootfs:
// mounts (cache volumes included), limits, network, raw keys and id map, as
// a job with the same keys would get. Raw is a copy the caller may extend.
func (r *Runner) ContainerConfig(c spec.Container, rootfs string, lease *stintnet.Lease) (container.Config, error) {
	job := spec.Job{Name: c.Name, Mounts: c.Mounts, Limits: c.Limits, Network: c.Network,
		Raw: maps.Clone(c.Raw), Privileged: c.Privileged}
	cfg, err := r.containerConfig(job, rootfs, lease)
	if err != nil {
		return container.Config{}, fmt.Errorf("container %s: %w", c.Name, err)
	}
	if cfg.Raw == nil {
		cfg.Raw = map[string]string{}
	}
	return cfg, nil
}

// Teardown removes everything the record held by h names (container,
// mounts, clone volume), then the record; on failure it keeps the record,
// unlocked, for gc to retry.
func (r *Runner) Teardown(ctx context.Context, h *state.Handle) error {
	return r.teardown(ctx, h)
}

// AttachNetwork gives long-lived container c (record h) its network: for
// bridge mode it attaches it through r.Net (bridge, address, hosts entry
// under hostname c.Name, published ports) and journals the lease in the
// record, so that Teardown and gc release it; for none and host it returns
// nil. Attaching again (at every start) keeps the address and re-adds what
// a reboot lost (bridge, rules).
func (r *Runner) AttachNetwork(ctx context.Context, h *state.Handle, c spec.Container) (*stintnet.Lease, error) {
	if c.Network.Mode != stintnet.ModeBridge {
		if len(c.Ports) > 0 {
			return nil, fmt.Errorf("container %s: published ports need network mode bridge, not %q", h.Name(), c.Network.Mode)
		}
		return nil, nil
	}
	if r.Net == nil {
		return nil, fmt.Errorf("container %s: network mode bridge: no network manager configured", h.Name())
	}
	ports := make([]stintnet.Port, 0, len(c.Ports))
	for _, p := range c.Ports {
		ports = append(ports, stintnet.Port(p))
	}
	lease, err := r.Net.Attach(ctx, stintnet.Request{Container: h.Name(), Hostname: c.Name, Mode: stintnet.ModeBridge,
		Bridge: c.Network.Bridge, IPv4: c.Network.IPv4, Ports: ports})
	if err != nil {
		// Attach's errors name the container (or its bridge) already.
		return nil, fmt.Errorf("attach network: %w", err)
	}
	raw, err := json.Marshal(lease)
	if err == nil {
		err = h.Update(func(rec *state.Record) { rec.Network = raw })
	}
	if err != nil {
		// The record must name the lease before we rely on it; release now
		// rather than leave an address nobody accounts for.
		return nil, fmt.Errorf("container %s: journal network lease: %w", h.Name(), errors.Join(err, r.Net.Release(ctx, h.Name())))
	}
	return lease, nil
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
