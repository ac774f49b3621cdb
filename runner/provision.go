package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/stintdev/stint/internal/lazyre"
	"github.com/stintdev/stint/internal/mountinfo"
	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/output"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
	"github.com/stintdev/stint/storage"
)

// instance is a provisioned container and what was made for it.
type instance struct {
	req   Request
	h     *state.Handle // set once the record exists: from then on, tear down
	vol   storage.Volume
	img   Image
	user  User
	env   []string
	lease *stintnet.Lease // bridge mode
	// imageTime is how long the image and its golden volume took.
	imageTime time.Duration
	// reading is the read-ahead of req.ReadAhead: done before teardown
	// (an open file keeps a zfs or lvm clone from being unmounted).
	reading sync.WaitGroup
}

// launch provisions req's container: image, golden volume, state record
// (before any resource), clone, templates, network, config, user and
// workdir, and (req.Start) starts it. On error, a returned instance with a
// handle still needs teardown.
func (r *Runner) launch(ctx context.Context, req Request) (*instance, error) {
	if container.CapabilitiesOf(r.Runtime).ImageRoot {
		// A runtime that makes roots from images (LXD): Root.Image, no
		// golden volume, clone or templates (runner/remote.go).
		return r.launchImage(ctx, req)
	}
	if p, ok := r.Runtime.(container.Primer); ok && req.Start {
		defer p.Prime(req.Init)() // from here: the record, the clone and the config hide its wait
	}
	inst := &instance{req: req}
	if err := r.resolveDev(&inst.req); err != nil {
		return inst, fmt.Errorf("%s %s: %w", req.what(), req.Name, err)
	}
	req = inst.req
	img, golden, err := r.imageAndGolden(ctx, inst)
	if err != nil {
		return inst, fmt.Errorf("%s %s: %w", req.what(), req.Name, err) // the resolver names the image
	}
	// The journal entry exists before any resource does: a kill -9 from
	// here on leaves a record that gc follows. The clone is named after the
	// record, so even a torn record is enough to find it.
	create := r.State.Create
	if req.Kind != state.KindContainer && r.sameFilesystem(golden.Rootfs) {
		create = r.State.CreateOrdered // see runner/state's doc: no fsync needed
	}
	inst.h, err = create(&state.Record{
		Name: req.Container, Kind: req.Kind, Job: req.Name, Image: img.Fingerprint,
		Driver: r.Storage.Name(), Volume: req.Container, Phase: state.PhaseCreating,
		NetMode: string(req.Network.Mode), Caches: cacheCopyIDs(req.Container, req.Mounts),
	})
	if err != nil {
		return inst, fmt.Errorf("%s %s: %w", req.what(), req.Name, err)
	}
	if err := r.provision(ctx, inst, golden.ID); err != nil {
		return inst, fmt.Errorf("%s %s: %w", req.what(), req.Name, err)
	}
	if !req.Start {
		return inst, nil
	}
	t := time.Now()
	if err := r.Runtime.Start(ctx, req.Container); err != nil {
		return inst, fmt.Errorf("%s %s: %w", req.what(), req.Name, err)
	}
	r.phase(req.Name, output.PhaseStart, t)
	_ = inst.h.Update(func(rec *state.Record) { rec.Phase = state.PhaseRunning })
	return inst, nil
}

// sameFilesystem reports whether the state journal, the LXC containers'
// directory and the golden volume at rootfs (so its clones too: btrfs
// snapshots, overlay and dir copies stay in the pool's filesystem) are on
// one mount, so that the journal's record is persisted before anything
// made after it.
func (r *Runner) sameFilesystem(rootfs string) bool {
	lp, ok := r.Runtime.(interface{ LXCPath() string })
	switch r.Storage.Name() {
	case "btrfs", "overlay", "dir":
	default:
		return false // a volume of its own (zfs dataset, lvm volume)
	}
	return ok && mountinfo.SameMount(r.State.Dir(), lp.LXCPath(), rootfs)
}

// what names req's kind in messages ("job x: ...").
func (req Request) what() string {
	if req.Kind == state.KindContainer {
		return "container"
	}
	return "job"
}

// provision clones the golden volume into inst's container and defines it
// in the runtime (stopped).
func (r *Runner) provision(ctx context.Context, inst *instance, golden string) error {
	req := inst.req
	t := time.Now()
	clone := r.Storage.Clone
	if tc, ok := r.Storage.(storage.TransientCloner); ok && req.Kind != state.KindContainer {
		clone = tc.CloneTransient // a job's clone: its record names it (storage's doc)
	}
	vol, err := clone(ctx, golden, req.Container)
	if err != nil {
		return fmt.Errorf("clone %s from %s: %w", req.Container, golden, err)
	}
	inst.vol = vol
	if len(req.ReadAhead) > 0 {
		inst.reading.Add(1)
		go func() { defer inst.reading.Done(); readAhead(vol.Rootfs, req.ReadAhead) }()
	}
	t = r.phase(req.Name, output.PhaseClone, t)
	if req.Render && inst.img.Render != nil {
		uid, gid := 0, 0
		if !req.Privileged {
			uid, gid = int(r.IDMap.HostUID), int(r.IDMap.HostGID)
		}
		if err := inst.img.Render(vol.Rootfs, req.Container, req.Privileged, uid, gid); err != nil {
			return err
		}
	}
	if err := r.giveHostUser(req, vol.Rootfs); err != nil {
		return err
	}
	if inst.lease, err = r.attachNetwork(ctx, inst.h, req); err != nil {
		return err
	}
	cfg, err := r.containerConfig(ctx, req, vol.Rootfs, inst.lease)
	if err != nil {
		return err
	}
	if req.Kind != state.KindContainer {
		if err := r.prepareUser(inst); err != nil {
			return err
		}
	}
	if err := r.define(ctx, req.Container, cfg, false); err != nil {
		return err
	}
	r.phase(req.Name, output.PhaseConfigure, t)
	return nil
}

// prepareUser looks up the job's user in its clone, makes its environment
// and its working directory.
func (r *Runner) prepareUser(inst *instance) error {
	req := inst.req
	var err error
	inst.user, err = lookupUserGroup(inst.vol.Rootfs, req.User, req.Group)
	if err != nil {
		return err
	}
	inst.env = JobEnv(req.Env, inst.user)
	if req.Workdir != "" {
		return r.makeWorkdir(inst.vol.Rootfs, req.Workdir, inst.user, req)
	}
	return nil
}

// define writes the runtime's definition of a stopped container; with
// replace (a long-lived container, defined again at every start: the
// definition is derived state) an old one is replaced whole.
func (r *Runner) define(ctx context.Context, name string, cfg container.Config, replace bool) error {
	if replace {
		if err := r.Runtime.Destroy(ctx, name); err != nil {
			return err
		}
	}
	return r.Runtime.Create(ctx, name, cfg)
}

// attachNetwork gives container req its network: in bridge mode through
// r.Net (bridge, address, hosts entry, published ports), journalling the
// lease in the record so that teardown and gc release it; nil for modes
// none and host. Attaching again (a long-lived container's every start)
// keeps the address and re-adds what a reboot lost (bridge, rules).
func (r *Runner) attachNetwork(ctx context.Context, h *state.Handle, req Request) (*stintnet.Lease, error) {
	if req.Network.Mode != stintnet.ModeBridge {
		if len(req.Ports) > 0 {
			return nil, fmt.Errorf("container %s: published ports need network mode bridge, not %q", h.Name(), req.Network.Mode)
		}
		return nil, nil
	}
	if r.Net == nil {
		return nil, fmt.Errorf("container %s: network mode bridge: no network manager configured", h.Name())
	}
	lease, err := r.attachLease(ctx, req)
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
		return nil, fmt.Errorf("journal network lease: %w", errors.Join(err, r.Net.Release(ctx, h.Name())))
	}
	return lease, nil
}

// makeWorkdir creates the job's working directory in its clone when the
// image lacks it, owned by the job's user (shifted into the id map), as
// `docker run -w` does. The path is resolved inside rootfs.
func (r *Runner) makeWorkdir(rootfs, dir string, u User, req Request) error {
	p, err := securejoin.SecureJoin(rootfs, dir)
	if err != nil {
		return fmt.Errorf("workdir %s: %w", dir, err)
	}
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("workdir %s: %w", dir, err)
	}
	uid, gid := u.UID, u.GID
	hole := req.Dev != nil && uint32(uid) == req.Dev.user.UID
	if !req.Privileged && !hole {
		su, _ := r.IDMap.ShiftUID(uint32(uid))
		sg, _ := r.IDMap.ShiftGID(uint32(gid))
		uid, gid = int(su), int(sg)
	}
	if err := os.Lchown(p, uid, gid); err != nil {
		return fmt.Errorf("workdir %s: %w", dir, err)
	}
	return nil
}

// containerConfig turns a request into a runtime Config.
func (r *Runner) containerConfig(ctx context.Context, req Request, rootfs string, lease *stintnet.Lease) (container.Config, error) {
	network, err := networkConfig(req.Network.Mode, lease)
	if err != nil {
		return container.Config{}, err
	}
	cfg := container.Config{
		Root:       container.Root{Dir: rootfs},
		Hostname:   req.Hostname,
		Privileged: req.Privileged,
		Limits:     req.Limits,
		Network:    network,
		Init:       req.Init,
		Raw:        req.Raw,
	}
	if !req.Privileged {
		cfg.IDMap = &container.IDMap{HostUID: r.IDMap.HostUID, HostGID: r.IDMap.HostGID, Size: r.IDMap.Size}
	}
	// A cache mount is the container's own copy of the cache, numbered by
	// the mount's place in req.Mounts (its record names it so: launch).
	copies := map[string]string{}
	for i, m := range req.Mounts {
		if m.Type == spec.MountCache && !usesVolumes(r) {
			dir, err := r.cacheMount(ctx, req, i, m)
			if err != nil {
				return container.Config{}, err
			}
			copies[m.Target] = dir
		}
	}
	mounts := append([]spec.Mount(nil), req.Mounts...)
	// Parents before children, so /a is mounted before /a/b.
	sort.SliceStable(mounts, func(i, j int) bool {
		return strings.Count(filepath.Clean(mounts[i].Target), "/") < strings.Count(filepath.Clean(mounts[j].Target), "/")
	})
	for _, m := range mounts {
		switch m.Type {
		case spec.MountBind, "":
			cfg.Mounts = append(cfg.Mounts, container.Mount{Type: container.MountBind, Source: m.Source, Target: m.Target, Readonly: m.Readonly})
		case spec.MountTmpfs:
			cfg.Mounts = append(cfg.Mounts, container.Mount{Type: container.MountTmpfs, Target: m.Target, Size: m.Size, Readonly: m.Readonly})
		case spec.MountCache:
			if usesVolumes(r) {
				// The runtime keeps cache volumes itself (LXD: a custom
				// volume on the remote's pool), shared and written in
				// place: RunJobs refuses a commit key (refuseCommit).
				cfg.Mounts = append(cfg.Mounts, container.Mount{Type: container.MountVolume, Volume: m.Name, Target: m.Target, Readonly: m.Readonly})
				continue
			}
			cfg.Mounts = append(cfg.Mounts, container.Mount{Type: container.MountBind, Source: copies[m.Target], Target: m.Target, Readonly: m.Readonly})
		default:
			return container.Config{}, fmt.Errorf("mount %s: unknown type %q", m.Target, m.Type)
		}
	}
	devConfig(&cfg, req)
	return cfg, nil
}

// cacheName is what a cache volume may be called (the spec's names are
// stricter).
var cacheName = lazyre.New(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$`)
