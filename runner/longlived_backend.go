package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/google/renameio/v2"

	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
)

// LongLived is the reconcile.Backend on stint's own runner: the job pipeline's
// image → golden → clone steps, the state journal as the ownership record,
// and the container Runtime (LXC by default).
//
// A container's runtime name is "<set>.<name>" (see RuntimeName); its state
// record (Kind container) names the set, the spec Hash and the clone volume
// (named like the container), and the resolved container spec is kept
// beside it in SpecDir for later diffs. The record is the ownership: a
// container without one is never touched, whatever its name.
type LongLived struct {
	Runner *Runner
	// Images returns the image resolver for a spec set (its [image.*]
	// tables, then the image store).
	Images func(*spec.Set) ImageResolver
	// SpecDir keeps each container's resolved spec (<root>/reconcile).
	SpecDir string
	// LogDir keeps each container's console log (<root>/logs).
	LogDir string

	mu  sync.Mutex
	set *spec.Set
	// remote, when set, carries every Backend method (longlived_remote.go).
	remote *remoteLongLived
}

var (
	_ reconcile.Backend = (*LongLived)(nil)
	_ reconcile.SetUser = (*LongLived)(nil)
)

// UseSet implements reconcile.SetUser.
func (b *LongLived) UseSet(s *spec.Set) {
	b.mu.Lock()
	b.set = s
	b.mu.Unlock()
}

// ConsoleLog is where container rtName's console (its PID 1's output) goes.
func (b *LongLived) ConsoleLog(rtName string) string {
	return filepath.Join(b.LogDir, rtName+".log")
}

func (b *LongLived) specPath(rtName string) string {
	return filepath.Join(b.SpecDir, rtName+".json")
}

// scriptPath is where stint before the typed container.Init kept a
// container's start script; Destroy still removes one an older stint left.
func (b *LongLived) scriptPath(rtName string) string {
	return filepath.Join(b.SpecDir, "run", rtName+".sh")
}

func (b *LongLived) readSpec(rtName string) (*spec.Container, error) {
	data, err := os.ReadFile(b.specPath(rtName))
	if err != nil {
		return nil, err
	}
	var c spec.Container
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("stored spec of %s: %w", rtName, err)
	}
	return &c, nil
}

func (b *LongLived) writeSpec(rtName string, c spec.Container) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.SpecDir, 0o700); err != nil {
		return fmt.Errorf("stored spec of %s: %w", rtName, err)
	}
	if err := renameio.WriteFile(b.specPath(rtName), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("stored spec of %s: %w", rtName, err)
	}
	return nil
}

// Records returns the records of every long-lived container of any set,
// for `stint ps` and `stint logs`.
func (b *LongLived) Records() ([]state.Record, error) {
	all, err := b.Runner.State.List()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(r state.Record) bool { return r.Kind != state.KindContainer }), nil
}

// List implements Backend.
func (b *LongLived) List(ctx context.Context, set string) ([]reconcile.Observed, error) {
	if b.remote != nil {
		return b.remote.list(ctx, set, b.currentSet())
	}
	b.mu.Lock()
	specSet := b.set
	b.mu.Unlock()
	// Before anything is planned: a set of this name from another
	// directory is not this one's to change.
	if err := b.checkOwner(set, specSet, false); err != nil {
		return nil, err
	}
	recs, err := b.Records()
	if err != nil {
		return nil, err
	}
	var out []reconcile.Observed
	for _, r := range recs {
		if r.Set != set {
			continue
		}
		o := reconcile.Observed{Name: reconcile.SpecName(r.Name), Set: set, Hash: r.SpecHash}
		st, err := b.Runner.Runtime.State(ctx, r.Name)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", r.Name, err)
		}
		c, specErr := b.readSpec(r.Name)
		switch {
		case st == container.StateAbsent || specErr != nil || r.Phase == state.PhaseCreating,
			st == container.StateStopped && b.rootfsLost(ctx, r.Volume) != nil:
			// Gone, half made (a crash mid-create), unstartable without
			// its stored spec, or its root emptied by hand: all mean "make
			// it again".
			o.Status = reconcile.StatusMissing
		case st == container.StateStopped:
			o.Status = reconcile.StatusStopped
		default: // running, or in transition: leave it be
			o.Status = reconcile.StatusRunning
		}
		o.Spec = c
		if o.Status == reconcile.StatusRunning {
			o.Started = b.readStarted(r.Name)
		}
		out = append(out, o)
	}
	return out, nil
}

// Create implements Backend: journal first, then clone and define the
// container, stopped. Any failure undoes what was done.
func (b *LongLived) Create(ctx context.Context, set string, c spec.Container, hash string) (err error) {
	if b.remote != nil {
		return b.remoteCreate(ctx, set, c, hash)
	}
	b.mu.Lock()
	specSet := b.set
	b.mu.Unlock()
	if err := b.checkOwner(set, specSet, true); err != nil {
		return err
	}
	r := b.Runner
	name := reconcile.RuntimeName(set, c.Name)
	h, err := r.State.Create(&state.Record{
		Name: name, Kind: state.KindContainer, Set: set, SpecHash: hash,
		Driver: r.Storage.Name(), Volume: name, Phase: state.PhaseCreating,
		Caches: cacheCopyIDs(name, c.Mounts),
	})
	if errors.Is(err, state.ErrExists) {
		if rec, gerr := r.State.Get(name); gerr == nil && rec.Kind == state.KindContainer && rec.Set == set {
			// Another stint process (a watch, an apply) of this set made it
			// meanwhile: the next pass sees it; not a conflict.
			return fmt.Errorf("create container %s: made meanwhile by another stint process of set %s", name, set)
		}
		return fmt.Errorf("create container %s: %w", name, reconcile.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create container %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			tctx := context.WithoutCancel(ctx)
			_ = os.Remove(b.specPath(name))
			_ = os.Remove(b.scriptPath(name))
			if terr := r.Teardown(tctx, h); terr != nil {
				err = errors.Join(err, terr)
			}
		}
	}()
	if err := b.writeSpec(name, c); err != nil {
		return err
	}
	var images ImageResolver
	if b.Images != nil {
		images = b.Images(specSet)
	}
	if images == nil {
		return fmt.Errorf("create container %s: no image resolver", name)
	}
	vol, img, err := r.CloneImage(ctx, images, c.Image, c.Privileged, name)
	if err != nil {
		return fmt.Errorf("create container %s: %w", name, err)
	}
	if err := h.Update(func(rec *state.Record) { rec.Image = img.Fingerprint }); err != nil {
		return err
	}
	// The image's "create" templates (/etc/hostname, /etc/hosts, ...), as
	// for jobs, with the container's own name.
	if img.Render != nil {
		uid, gid := 0, 0
		if !c.Privileged {
			uid, gid = int(r.IDMap.HostUID), int(r.IDMap.HostGID)
		}
		if err := img.Render(vol.Rootfs, c.Name, c.Privileged, uid, gid); err != nil {
			return fmt.Errorf("create container %s: %w", name, err)
		}
	}
	// The network is attached at creation, so that a taken fixed address
	// or host port fails the create, and the address is the container's
	// from now until it is destroyed (Teardown releases it).
	req := containerRequest(set, c, name, b.ConsoleLog(name))
	if req.Dev, err = b.devFor(set, c, name, true); err != nil {
		return err
	}
	if err := r.giveHostUser(req, vol.Rootfs); err != nil {
		return fmt.Errorf("create container %s: %w", name, err)
	}
	if err := img.Defaults.applyInit(&req, vol.Rootfs); err != nil {
		return err
	}
	if err := b.initUser(img.Defaults, &req, vol.Rootfs, c); err != nil {
		return err
	}
	minimalUnlessBootable(&req, vol.Rootfs)
	lease, err := r.attachNetwork(ctx, h, req)
	if err != nil {
		return err
	}
	if err := b.define(ctx, req, vol.Rootfs, lease); err != nil {
		return err
	}
	if err := h.Update(func(rec *state.Record) { rec.Phase = state.PhaseStopped }); err != nil {
		return err
	}
	return h.Release()
}

// define (re)writes the runtime's definition of a stopped container from
// its request.
func (b *LongLived) define(ctx context.Context, req Request, rootfs string, lease *stintnet.Lease) error {
	cfg, err := b.Runner.containerConfig(ctx, req, rootfs, lease)
	if err != nil {
		return fmt.Errorf("container %s: %w", req.Name, err)
	}
	if err := os.MkdirAll(b.LogDir, 0o750); err != nil {
		return fmt.Errorf("container %s: log directory: %w", req.Container, err)
	}
	return b.Runner.define(ctx, req.Container, cfg, true)
}

// claim takes the record of a container this set owns.
func (b *LongLived) claim(set, name string) (*state.Handle, error) {
	rtName := reconcile.RuntimeName(set, name)
	// Busy means a live process holds it (no retry): releases unlock the
	// descriptor's copies in forked children too, and gc's probes leave
	// long-lived containers' records alone (runner/state).
	h, err := b.Runner.State.Claim(rtName)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", rtName, err)
	}
	if rec := h.Record(); rec.Kind != state.KindContainer || rec.Set != set {
		_ = h.Release()
		return nil, fmt.Errorf("container %s: %w", rtName, reconcile.ErrExists)
	}
	return h, nil
}

// Start implements Backend: the definition is rewritten from the stored
// spec first (it carries env and limits changed in place since), and the
// volume is mounted again if a reboot unmounted it.
func (b *LongLived) Start(ctx context.Context, set, name string) error {
	if b.remote != nil {
		return b.remote.start(ctx, set, name)
	}
	h, err := b.claim(set, name)
	if err != nil {
		return err
	}
	defer h.Release()
	rec := h.Record()
	st, err := b.Runner.Runtime.State(ctx, rec.Name)
	if err != nil {
		return err
	}
	if st == container.StateRunning {
		return nil
	}
	c, err := b.readSpec(rec.Name)
	if err != nil {
		return fmt.Errorf("start container %s: %w", rec.Name, err)
	}
	vol, err := b.Runner.Storage.Get(ctx, rec.Volume)
	if err != nil {
		return fmt.Errorf("start container %s: volume %s: %w", rec.Name, rec.Volume, err)
	}
	// Attach again: the same address, and the bridge and its rules back
	// after a reboot (the kernel forgets them; the lease does not).
	req := containerRequest(set, *c, rec.Name, b.ConsoleLog(rec.Name))
	if req.Dev, err = b.devFor(set, *c, rec.Name, false); err != nil {
		return err
	}
	if err := b.Runner.giveHostUser(req, vol.Rootfs); err != nil {
		return fmt.Errorf("start container %s: %w", rec.Name, err)
	}
	defaults := b.imageDefaults(ctx, rec.Image)
	if err := defaults.applyInit(&req, vol.Rootfs); err != nil {
		return err
	}
	if err := b.initUser(defaults, &req, vol.Rootfs, *c); err != nil {
		return err
	}
	minimalUnlessBootable(&req, vol.Rootfs)
	if err := b.renderStart(ctx, rec.Image, *c, vol.Rootfs); err != nil {
		return fmt.Errorf("start container %s: %w", rec.Name, err)
	}
	lease, err := b.Runner.attachNetwork(ctx, h, req)
	if err != nil {
		return err
	}
	if err := b.define(ctx, req, vol.Rootfs, lease); err != nil {
		return err
	}
	// Before the start: it only counts while the container runs, and a
	// container never runs with values it does not record.
	if err := b.writeStarted(rec.Name, *c); err != nil {
		return err
	}
	if err := b.Runner.Runtime.Start(ctx, rec.Name); err != nil {
		return err
	}
	if err := b.Runner.NetworkStarted(ctx, lease); err != nil {
		return fmt.Errorf("start container %s: %w", rec.Name, err)
	}
	if err := b.settle(ctx, rec.Name); err != nil {
		return errors.Join(err, h.Update(func(r *state.Record) { r.Phase = state.PhaseStopped }))
	}
	return h.Update(func(r *state.Record) { r.Phase = state.PhaseRunning })
}

// Stop implements Backend.
func (b *LongLived) Stop(ctx context.Context, set, name string) error {
	if b.remote != nil {
		return b.remote.stop(ctx, set, name)
	}
	h, err := b.claim(set, name)
	if err != nil {
		return err
	}
	defer h.Release()
	if err := b.Runner.Runtime.Stop(ctx, h.Name()); err != nil {
		return err
	}
	return h.Update(func(r *state.Record) { r.Phase = state.PhaseStopped })
}

// Update implements Backend: the stored spec and hash change now; the
// runtime sees env and limits at the container's next start (Start
// rewrites the definition), a running one keeps its current values.
func (b *LongLived) Update(ctx context.Context, set string, c spec.Container, hash string) error {
	if b.remote != nil {
		return b.remote.update(ctx, set, c, hash)
	}
	h, err := b.claim(set, c.Name)
	if err != nil {
		return err
	}
	defer h.Release()
	if err := b.writeSpec(h.Name(), c); err != nil {
		return err
	}
	return h.Update(func(r *state.Record) { r.SpecHash = hash })
}

// Destroy implements Backend: the container, its volume, its stored spec,
// its console log, then its record. A container with no record is gone.
func (b *LongLived) Destroy(ctx context.Context, set, name string) error {
	if b.remote != nil {
		return b.remote.destroy(ctx, set, name)
	}
	h, err := b.claim(set, name)
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rtName := h.Name()
	if err := removeLongLivedFiles(b.SpecDir, b.LogDir, b.Runner.AgentDir, rtName); err != nil {
		_ = h.Release()
		return fmt.Errorf("destroy container %s: %w", rtName, err)
	}
	return b.Runner.Teardown(ctx, h)
}
