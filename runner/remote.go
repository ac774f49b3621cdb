package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/remote"
	"github.com/stintdev/stint/runner/artifact"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/lxdrt"
	"github.com/stintdev/stint/runner/output"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
)

// A remote runtime (--remote NAME: an LXD or Incus server, runner/lxdrt)
// makes roots from images (container.Capabilities.ImageRoot): the Host
// then opens no storage pool, id map or network manager, and the engine
// makes no golden volume, clone or template rendering. The record is
// journalled (with the remote's name) before the instance is created, as
// locally; the user and workdir are resolved through the runtime's file
// API and an exec once it runs; artifacts are read through its fs.FS
// (artifact.CollectFS); gc deletes instances by their tags.

// connectRemote opens the runtime of the lxd remote called name in root's
// store of remotes.
func connectRemote(ctx context.Context, root, name string) (container.Runtime, error) {
	st, err := remote.Open(root)
	if err != nil {
		return nil, err
	}
	return lxdrt.Connect(ctx, st, name, root)
}

// remoteEngine wires the engine over a remote runtime: the state journal,
// the image store (images are built, imported or pulled locally, then
// uploaded once by fingerprint) and the runtime; nothing else.
func (h *Host) remoteEngine(ctx context.Context) (*Runner, error) {
	st, err := h.state()
	if err != nil {
		return nil, err
	}
	imgs, err := h.Images()
	if err != nil {
		return nil, err
	}
	rt, err := h.runtime(ctx)
	if err != nil {
		return nil, err
	}
	if !container.CapabilitiesOf(rt).ImageRoot {
		return nil, fmt.Errorf("remote %s: its runtime does not make roots from images: %w", h.opts.Remote, container.ErrUnsupported)
	}
	r := &Runner{
		Runtime: rt,
		State:   st,
		LogDir:  h.layout.Logs(),
		Collect: CollectLocal, // collect reads through the runtime's files (collectFS)
		Remote:  h.opts.Remote,
		SpecDir: h.layout.Reconcile(), // kept jobs' shell info, as locally

		BuildOutput: h.opts.BuildOutput,
	}
	r.Images = &StoreImages{Store: imgs, Set: h.opts.Set, Recipes: r}
	r.localBuilder = h.localEngine
	h.mu.Lock()
	h.runner = r
	h.mu.Unlock()
	return r, nil
}

// launchImage is launch on a runtime that makes roots from images.
func (r *Runner) launchImage(ctx context.Context, req Request) (*instance, error) {
	inst := &instance{req: req}
	fail := func(err error) (*instance, error) { return inst, fmt.Errorf("%s %s: %w", req.what(), req.Name, err) }
	img, err := r.Images.ResolveImage(ctx, req.Image)
	if err != nil {
		return inst, fmt.Errorf("%s %s: %w", req.what(), req.Name, err) // the resolver names the image
	}
	inst.img = img
	inst.req = img.Defaults.apply(inst.req)
	ref, err := r.imageRef(img)
	if err != nil {
		return fail(err)
	}
	// The record before the instance: a kill -9 from here on leaves a
	// record that gc follows (and the instance's tags name it).
	inst.h, err = r.State.Create(&state.Record{
		Name: req.Container, Kind: req.Kind, Set: req.Set, Job: req.Name, Image: img.Fingerprint,
		Remote: r.Remote, Phase: state.PhaseCreating,
	})
	if err != nil {
		return fail(err)
	}
	t := time.Now()
	cfg, err := r.containerConfig(ctx, req, "", nil)
	if err != nil {
		return fail(err)
	}
	cfg.Root, cfg.IDMap = container.Root{Image: ref}, nil
	if err := r.createRemote(ctx, req, cfg); err != nil {
		return fail(err)
	}
	t = r.phase(req.Name, output.PhaseConfigure, t)
	if !req.Start {
		return inst, nil
	}
	if err := r.Runtime.Start(ctx, req.Container); err != nil {
		return fail(err)
	}
	if req.Kind != state.KindContainer {
		if err := r.prepareUserRemote(ctx, inst); err != nil {
			return fail(err)
		}
	}
	r.phase(req.Name, output.PhaseStart, t)
	_ = inst.h.Update(func(rec *state.Record) { rec.Phase = state.PhaseRunning })
	return inst, nil
}

// createRemote creates the instance, tagged with what gc needs (this
// host and process, the job and its record) when the runtime takes tags.
func (r *Runner) createRemote(ctx context.Context, req Request, cfg container.Config) error {
	lrt, ok := r.Runtime.(*lxdrt.Runtime)
	if !ok {
		return r.Runtime.Create(ctx, req.Container, cfg)
	}
	host, _ := os.Hostname()
	tags := map[string]string{
		lxdrt.TagHost: host, lxdrt.TagPid: strconv.Itoa(os.Getpid()),
		"job": req.Name, "journal": req.Container, "kind": req.Kind,
	}
	if req.Set != "" {
		tags["set"] = req.Set
	}
	return lrt.CreateWith(ctx, req.Container, cfg, lxdrt.CreateOptions{Tags: tags, Target: req.Target, Persistent: req.Kind == state.KindContainer})
}

// imageRef is the runtime's reference to img: its fingerprint, and its
// files in the local store for the one upload.
func (r *Runner) imageRef(img Image) (*container.ImageRef, error) {
	si, ok := r.Images.(*StoreImages)
	if !ok || si.Store == nil {
		return &container.ImageRef{Fingerprint: img.Fingerprint}, nil
	}
	stored, err := si.Store.Resolve(img.Fingerprint)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Fingerprint, err)
	}
	return lxdrt.FileImage(stored.Fingerprint, stored.Path(), stored.RootfsPath()), nil
}

// prepareUserRemote resolves the job's user from the running instance's
// /etc/passwd and /etc/group (read through the file API, never through a
// symlink), makes its environment, and its working directory when the
// image lacks it (mkdir -p and chown, as root in the instance).
func (r *Runner) prepareUserRemote(ctx context.Context, inst *instance) error {
	req := inst.req
	dir, done, err := r.userRoot(ctx, req.Container) // shell_remote.go
	if err != nil {
		return fmt.Errorf("user %s: %w", req.User, err)
	}
	defer done()
	if inst.user, err = lookupUserGroup(dir, req.User, req.Group); err != nil {
		return err
	}
	inst.env = JobEnv(req.Env, inst.user)
	if req.Workdir == "" {
		return nil
	}
	st, err := r.Runtime.Exec(ctx, req.Container, container.ExecOptions{
		Argv: []string{"/bin/sh", "-c", `[ -e "$1" ] || { mkdir -p "$1" && chown "$2:$3" "$1"; }`, "sh",
			req.Workdir, strconv.Itoa(inst.user.UID), strconv.Itoa(inst.user.GID)},
		Env: []string{"PATH=" + DefaultPath},
	})
	if err != nil {
		return fmt.Errorf("workdir %s: %w", req.Workdir, err)
	}
	if !st.Success() {
		return fmt.Errorf("workdir %s: mkdir in the container failed (%v)", req.Workdir, st)
	}
	return nil
}

// collectFS copies the job's artifacts through the runtime's file API
// (a runtime with no local root directory). It reports true when it did.
func (r *Runner) collectFS(ctx context.Context, job spec.Job, failed bool, dest string, res *Result) (artifact.Result, bool, error) {
	if _, ok := r.Runtime.(container.RootDirer); ok {
		return artifact.Result{}, false, nil
	}
	fr, ok := r.Runtime.(container.FileReader)
	if !ok {
		return artifact.Result{}, false, nil
	}
	fsys, err := fr.Files(ctx, res.Container)
	if err != nil {
		return artifact.Result{}, true, err
	}
	got, err := artifact.CollectFS(ctx, fsys, job.Artifacts, dest, failed, artifact.Options{})
	return got, true, err
}

// gcRemote is GC on a remote: the journal's orphaned records are torn
// down (their instances destroyed), then instances of this root's owner
// whose process on this host is gone and that no record names are
// deleted; an instance without stint's tags is never touched.
func (r *Runner) gcRemote(ctx context.Context, opts GCOptions) (GCResult, error) {
	// Another runtime's records: gc that one with its own --remote.
	res, err := r.gcRecords(ctx, opts, func(rec state.Record) bool { return rec.Remote != r.Remote })
	if err != nil {
		return res, err
	}
	if lrt, ok := r.Runtime.(*lxdrt.Runtime); ok {
		gone, err := lrt.GC(ctx, func(i lxdrt.Instance) bool {
			if i.Tags[tagKind] == "container" {
				return true // long-lived: its set's, until down
			}
			if _, err := r.State.Get(i.Name); !errors.Is(err, state.ErrNotFound) {
				return true // a record names it: its owner's, or the next gc's
			}
			return !lxdrt.Orphaned(i)
		})
		res.Removed = append(res.Removed, gone...)
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
	}
	if err := r.State.Sweep(); err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	return res, nil
}

// remoteEntries adds the remote's long-lived instances (which have no
// record here: the remote is their truth) to ps's entries.
func (h *Host) remoteEntries(ctx context.Context, rt container.Runtime, out []Entry) ([]Entry, error) {
	lrt, ok := rt.(*lxdrt.Runtime)
	if !ok {
		return out, nil
	}
	more, err := (&remoteLongLived{r: &Runner{Remote: h.opts.Remote}, rt: lrt}).entries(ctx)
	if err != nil {
		return nil, err
	}
	return append(out, more...), nil
}

// localEngine opens, once, the local engine of this root (storage pool, id
// map, LXC) that recipe builds run on when jobs run on a remote: a recipe
// writes into its build container's root, which must be on this host.
// Only a recipe build opens it, so a remote run without one needs no local
// containers at all.
func (h *Host) localEngine(ctx context.Context) (*Runner, error) {
	h.mu.Lock()
	local := h.local
	h.mu.Unlock()
	if local == nil {
		opts := h.opts
		opts.Remote, opts.Containers = "", true
		l, err := Open(ctx, h.layout.Root, opts)
		if err != nil {
			return nil, fmt.Errorf("local engine for recipe builds: %w", err)
		}
		h.mu.Lock()
		if h.local == nil {
			h.local = l
		} else {
			defer l.Close() // another build opened one meanwhile
		}
		local = h.local
		h.mu.Unlock()
	}
	return local.engine(ctx)
}

// buildRecipeLocally builds rec on the local engine, with this runner's
// output: the image lands in the store, and the remote job that needs it
// uploads it by fingerprint like any other.
func (r *Runner) buildRecipeLocally(ctx context.Context, store *images.Store, baseImg Image, base *images.Image, rec *images.Recipe, key string, aliases []string) (*images.Image, error) {
	if r.localBuilder == nil {
		return nil, fmt.Errorf("image %s: recipe builds on a remote runtime: %w", rec.Name, container.ErrUnsupported)
	}
	lr, err := r.localBuilder(ctx)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", rec.Name, err)
	}
	lr.outMu.Lock()
	lr.BuildOutput = r.BuildOutput
	lr.outMu.Unlock()
	return lr.buildRecipe(ctx, store, baseImg, base, rec, key, aliases)
}
