package runner

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/lxdrt"
	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
)

// Long-lived containers on a remote (--remote NAME with plan, apply, down,
// watch). The remote's instances are the truth: each is persistent (not
// ephemeral, so a member's reboot keeps it) and carries, besides the owner
// and name keys every stint instance has, user.stint.* tags saying what it
// is (tagKind), which set and container of it, the Hash and the resolved
// spec it was made from, the directory of the specs that own the set, and
// whether it is complete (tagPhase: "creating" until the create finished,
// so a stint killed mid-create leaves an instance the next plan recreates).
// Nothing is kept on this host, so `down` leaves nothing anywhere.
//
// A restart owed is on the remote too (tagStarted): the update that gives
// a running instance new env or limits also records the spec its PID 1
// was started from, and only a start that succeeded (or a stop) clears it.
// A stop or start that failed, or a stint killed in between, leaves the
// tag, and the next plan shows "recorded, needs a restart" as locally.
//
// On a remote the instance is made from the image (uploaded once by
// fingerprint) as for jobs; LXD boots the image's init or runs the spec's
// command as PID 1; ports become proxy devices; limits and env change in
// place (limits at once, env from the next start). host_user is refused:
// the invoking user's files are on this host.

// Tags of a long-lived instance (user.stint.<tag>).
const (
	tagKind      = "kind"      // state.KindContainer
	tagSet       = "set"       // the spec set
	tagContainer = "container" // the spec's container name
	tagHash      = "hash"      // spec.Container.Hash of what made it
	tagSpec      = "spec"      // the resolved container, JSON
	tagDir       = "dir"       // the directory of the specs owning the set
	tagNamed     = "named"     // "true": the set's name key named it
	tagPhase     = "phase"     // phaseCreating until Create finished
	tagStarted   = "started"   // the spec PID 1 runs with, while a restart is owed
	phaseReady   = "ready"
	phaseMaking  = "creating"
)

// remoteLongLived is the reconcile backend of LongLived on a remote runtime.
type remoteLongLived struct {
	r  *Runner
	rt *lxdrt.Runtime
}

// remoteContainers is Host.Containers on a remote: the backend lists and
// changes the remote's instances; images resolve (and build) locally.
func (h *Host) remoteContainers(ctx context.Context, set *spec.Set) (*LongLived, error) {
	var r *Runner
	if h.opts.Containers {
		var err error
		if r, err = h.engine(ctx); err != nil {
			return nil, err
		}
	} else {
		rt, err := h.runtime(ctx)
		if err != nil {
			return nil, err
		}
		r = &Runner{Runtime: rt, Remote: h.opts.Remote}
	}
	lrt, ok := r.Runtime.(*lxdrt.Runtime)
	if !ok {
		return nil, fmt.Errorf("remote %s: long-lived containers: %w", h.opts.Remote, container.ErrUnsupported)
	}
	b := &LongLived{Runner: r, remote: &remoteLongLived{r: r, rt: lrt}}
	if h.opts.Containers {
		imgs := r.Images.(*StoreImages).Store
		b.Images = func(s *spec.Set) ImageResolver { return &StoreImages{Store: imgs, Set: s, Recipes: r} }
	}
	b.UseSet(set)
	return b, nil
}

// longLivedInstance is one of stint's long-lived instances of a set.
type longLivedInstance struct {
	lxdrt.Instance
	spec *spec.Container // nil when the tag is missing or unreadable
}

// instances lists the set's long-lived instances.
func (b *remoteLongLived) instances(ctx context.Context, set string) ([]longLivedInstance, error) {
	all, err := b.rt.Instances(ctx)
	if err != nil {
		return nil, err
	}
	var out []longLivedInstance
	for _, i := range all {
		if i.Tags[tagKind] != "container" || i.Tags[tagSet] != set {
			continue
		}
		li := longLivedInstance{Instance: i}
		var c spec.Container
		if err := json.Unmarshal([]byte(i.Tags[tagSpec]), &c); err == nil {
			li.spec = &c
		}
		out = append(out, li)
	}
	return out, nil
}

// checkOwner is LongLived.checkOwner on the instances' tags: a set made
// from specs in another directory is refused unless both named it.
func (b *remoteLongLived) checkOwner(insts []longLivedInstance, set string, s *spec.Set) error {
	want, ok := ownerOf(s)
	if !ok || s.Name != set {
		return nil
	}
	for _, i := range insts {
		dir := i.Tags[tagDir]
		if dir != "" && !sameDir(dir, want.Dir) && !(i.Tags[tagNamed] == "true" && want.Named) {
			return &reconcile.SetOwnedError{Set: set, Dir: dir}
		}
	}
	return nil
}

// list implements Backend.List.
func (b *remoteLongLived) list(ctx context.Context, set string, s *spec.Set) ([]reconcile.Observed, error) {
	insts, err := b.instances(ctx, set)
	if err != nil {
		return nil, err
	}
	if err := b.checkOwner(insts, set, s); err != nil {
		return nil, err
	}
	out := make([]reconcile.Observed, 0, len(insts))
	for _, i := range insts {
		o := reconcile.Observed{Name: i.Tags[tagContainer], Set: set, Hash: i.Tags[tagHash], Spec: i.spec}
		switch {
		case i.Tags[tagPhase] != phaseReady || i.spec == nil:
			o.Status = reconcile.StatusMissing // half made: make it again
		case i.State == container.StateStopped:
			o.Status = reconcile.StatusStopped
		default:
			o.Status = reconcile.StatusRunning
			o.Started = startedOf(i.Instance)
		}
		out = append(out, o)
	}
	return out, nil
}

// UsageError is a spec a remote cannot run (host_user): exit 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode is 2: bad spec or usage.
func (e *UsageError) ExitCode() int { return 2 }

// create implements Backend.Create: the instance from the image, stopped,
// tagged "creating" until it is complete; a failure deletes it.
func (b *remoteLongLived) create(ctx context.Context, set string, c spec.Container, hash string, s *spec.Set, images ImageResolver) (err error) {
	name := reconcile.RuntimeName(set, c.Name)
	if c.HostUser {
		return &UsageError{Err: fmt.Errorf("container %s: host_user on remote %s: %w (the invoking user's files are on this host)", name, b.r.Remote, container.ErrUnsupported)}
	}
	insts, err := b.instances(ctx, set)
	if err != nil {
		return err
	}
	if err := b.checkOwner(insts, set, s); err != nil {
		return err
	}
	if images == nil {
		return fmt.Errorf("create container %s: no image resolver", name)
	}
	img, err := images.ResolveImage(ctx, c.Image)
	if err != nil {
		return fmt.Errorf("create container %s: %w", name, err)
	}
	ref, err := b.r.imageRef(img)
	if err != nil {
		return fmt.Errorf("create container %s: %w", name, err)
	}
	req := containerRequest(set, c, name, "")
	cfg, err := b.r.containerConfig(ctx, req, "", nil)
	if err != nil {
		return fmt.Errorf("create container %s: %w", name, err)
	}
	cfg.Root, cfg.IDMap = container.Root{Image: ref}, nil
	js, err := json.Marshal(c)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	tags := map[string]string{
		tagKind: "container", tagSet: set, tagContainer: c.Name, tagHash: hash, tagSpec: string(js),
		tagPhase: phaseMaking, lxdrt.TagHost: host, "journal": name,
	}
	if own, ok := ownerOf(s); ok && s.Name == set {
		tags[tagDir], tags[tagNamed] = own.Dir, strconv.FormatBool(own.Named)
	}
	o := lxdrt.CreateOptions{Tags: tags, Target: c.Target, Persistent: true, Ports: proxyPorts(c.Ports)}
	if err := b.rt.CreateWith(ctx, name, cfg, o); err != nil {
		return fmt.Errorf("create container %s: %w", name, err)
	}
	if err := b.rt.Reconfigure(ctx, name, lxdrt.Reconfig{Tags: map[string]string{tagPhase: phaseReady}}); err != nil {
		return errors.Join(fmt.Errorf("create container %s: %w", name, err), b.rt.Destroy(context.WithoutCancel(ctx), name))
	}
	return nil
}

// proxyPorts are a container's published ports as LXD proxy devices: the
// listener on the member's address (or the spec's host IP), the
// connection to the port on the container's loopback.
func proxyPorts(ps []spec.Port) []lxdrt.Port {
	var out []lxdrt.Port
	for _, p := range ps {
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		out = append(out, lxdrt.Port{
			Listen:  fmt.Sprintf("%s:%s:%d", p.Proto, ip, p.HostPort),
			Connect: fmt.Sprintf("%s:127.0.0.1:%d", p.Proto, p.ContainerPort),
		})
	}
	return out
}

// start implements Backend.Start, waiting settleTime to see PID 1 stay up.
func (b *remoteLongLived) start(ctx context.Context, set, name string) error {
	rtName := reconcile.RuntimeName(set, name)
	st, err := b.rt.State(ctx, rtName)
	if err != nil {
		return err
	}
	if st == container.StateRunning {
		return nil
	}
	if err := b.rt.Start(ctx, rtName); err != nil {
		return err
	}
	deadline := time.Now().Add(settleTime)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if st, err := b.rt.State(ctx, rtName); err != nil {
			return err
		} else if st == container.StateStopped || st == container.StateAbsent {
			tail, _ := b.rt.ConsoleLog(context.WithoutCancel(ctx), rtName, 10)
			if tail != "" {
				tail = "; the last lines of its console:\n  " + tail
			}
			return fmt.Errorf("container %s: %w%s", rtName, ErrExited, tail)
		}
	}
	return b.restarted(ctx, rtName)
}

// update implements Backend.Update: the tags, limits (live) and env (from
// the next start) in place. A running instance also gets tagStarted, in
// the same update: the spec its PID 1 runs with (the one it was started
// from, or that of an earlier restart still owed), until a start clears it.
func (b *remoteLongLived) update(ctx context.Context, set string, c spec.Container, hash string) error {
	rtName := reconcile.RuntimeName(set, c.Name)
	js, err := json.Marshal(c)
	if err != nil {
		return err
	}
	cur, found, err := b.rt.Get(ctx, rtName)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("update container %s: %w", rtName, container.ErrNotFound)
	}
	tags := map[string]string{tagHash: hash, tagSpec: string(js), tagStarted: ""}
	if cur.State != container.StateStopped { // else its next start reads the new values
		tags[tagStarted] = startedNow(cmp.Or(cur.Tags[tagStarted], cur.Tags[tagSpec]), c.Limits)
	}
	req := containerRequest(set, c, rtName, "")
	env := req.Init.Env
	if env == nil {
		env = []string{}
	}
	return b.rt.Reconfigure(ctx, rtName, lxdrt.Reconfig{Tags: tags, Limits: &req.Limits, Env: env})
}

// startedNow is tagStarted of a running instance that was started from
// the spec in JSON js and gets limits now: LXD applies limits to a running
// instance at once (the update fails if it cannot), so only env waits for
// the restart. An unreadable js is kept as "{}" (a restart still owed).
func startedNow(js string, limits spec.Limits) string {
	var c spec.Container
	if json.Unmarshal([]byte(js), &c) != nil {
		return "{}"
	}
	c.Limits = limits
	b, err := json.Marshal(c)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// startedOf is the spec a running instance's PID 1 was started from when
// a restart is owed (tagStarted), else nil: it runs with its spec. An
// unreadable tag still means a restart is owed.
func startedOf(i lxdrt.Instance) *spec.Container {
	js := i.Tags[tagStarted]
	if js == "" {
		return nil
	}
	var c spec.Container
	if json.Unmarshal([]byte(js), &c) != nil {
		return &spec.Container{}
	}
	return &c
}

// restarted clears tagStarted of an instance that started or stopped:
// whatever runs next runs with its current config.
func (b *remoteLongLived) restarted(ctx context.Context, rtName string) error {
	cur, found, err := b.rt.Get(ctx, rtName)
	if err != nil || !found || cur.Tags[tagStarted] == "" {
		return err
	}
	return b.rt.Reconfigure(ctx, rtName, lxdrt.Reconfig{Tags: map[string]string{tagStarted: ""}})
}

// entries are the remote's long-lived instances of every set, for ps.
func (b *remoteLongLived) entries(ctx context.Context) ([]Entry, error) {
	all, err := b.rt.Instances(ctx)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, i := range all {
		if i.Tags[tagKind] != "container" {
			continue
		}
		e := Entry{State: i.State}
		e.Name, e.Kind, e.Set, e.Job, e.Remote = i.Name, "container", i.Tags[tagSet], i.Tags[tagContainer], b.r.Remote
		out = append(out, e)
	}
	return out, nil
}

// find is LongLived.Find on the remote's instances: SET.NAME, or NAME
// when only one set has it.
func (b *remoteLongLived) find(ctx context.Context, name string) (set, specName string, err error) {
	all, err := b.rt.Instances(ctx)
	if err != nil {
		return "", "", err
	}
	var recs []state.Record
	for _, i := range all {
		if i.Tags[tagKind] == "container" && i.Tags[tagSet] != "" && i.Tags[tagContainer] != "" {
			recs = append(recs, state.Record{Name: reconcile.RuntimeName(i.Tags[tagSet], i.Tags[tagContainer]), Kind: state.KindContainer, Set: i.Tags[tagSet]})
		}
	}
	r, err := findContainer(recs, name)
	if err != nil {
		return "", "", err
	}
	return r.Set, reconcile.SpecName(r.Name), nil
}

// stop implements Backend.Stop.
func (b *remoteLongLived) stop(ctx context.Context, set, name string) error {
	rtName := reconcile.RuntimeName(set, name)
	if err := b.rt.Stop(ctx, rtName); err != nil {
		return err
	}
	return b.restarted(ctx, rtName)
}

// destroy implements Backend.Destroy: the instance goes, and with it
// everything stint keeps of it.
func (b *remoteLongLived) destroy(ctx context.Context, set, name string) error {
	return b.rt.Destroy(ctx, reconcile.RuntimeName(set, name))
}

// remoteCreate is Create on a remote, with the set in use and its images.
func (b *LongLived) remoteCreate(ctx context.Context, set string, c spec.Container, hash string) error {
	s := b.currentSet()
	var images ImageResolver
	if b.Images != nil {
		images = b.Images(s)
	}
	return b.remote.create(ctx, set, c, hash, s, images)
}

// currentSet is the spec set UseSet gave.
func (b *LongLived) currentSet() *spec.Set {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.set
}
