package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/hostdir"
	"github.com/stintdev/stint/internal/idmap"
	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/artifact"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/lxcrt"
	"github.com/stintdev/stint/runner/output"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
	"github.com/stintdev/stint/storage"
)

// PrimeStarts readies this host, in the background, for local container
// starts soon to come (lxcrt/cgroupwarm.go: the cgroup migration lock,
// whose first use costs an RCU grace period, 6-18 ms here) and returns at
// once. The CLI calls it first thing for commands that start containers,
// so the wait overlaps their parsing and set-up; it lapses by itself.
func PrimeStarts() { lxcrt.PrimeFor(250 * time.Millisecond) }

// Options configure Open.
type Options struct {
	// Containers says the caller will make containers (run, exec, gc,
	// apply, down, watch, recipe builds). The root must then be reachable by
	// unprivileged containers' root (a blocking ancestor is an error naming
	// it, and nothing is made), and every part is opened at once, so that a
	// host failure shows before any work starts. Without it, parts open on
	// first use (ps opens no storage pool, image list no runtime).
	Containers bool
	// Set is the spec set in use: its [storage] table chooses the pool and
	// its [image.*] tables resolve images. nil: driver auto under the root.
	Set *spec.Set
	// Getenv reads the caller's environment for host_user (SUDO_UID,
	// SUDO_GID, SUDO_USER, SSH_AUTH_SOCK); nil: os.Getenv.
	Getenv func(string) string
	// Remote names a stored lxd remote (`stint remote add`) whose server
	// runs the containers instead of local LXC; "" is local. See remote.go.
	Remote string
	// BuildOutput receives recipe builds' output as it is made (the
	// CLI's -v; see Runner.BuildOutput); nil: their build logs only.
	BuildOutput io.Writer
}

// Host is one stint root opened: the front door through which the CLI asks
// for work. It owns the root's layout and wires the parts (state journal,
// storage pool, network manager, image store, container runtime); nothing
// outside runner opens them. A Host is safe for concurrent use.
type Host struct {
	layout Layout
	opts   Options

	mu     sync.Mutex
	st     *state.Store
	rt     container.Runtime
	imgs   *images.Store
	drv    storage.Driver
	nm     *stintnet.Manager
	runner *Runner
	local  *Host // on a remote: the local engine recipes build on (remote.go)
}

// Open opens the stint root at root, making it (0755, searchable by
// containers) if it is missing; a directory stint did not make is never
// chmodded.
func Open(ctx context.Context, root string, opts Options) (*Host, error) {
	if opts.Containers {
		if err := hostdir.CheckReachable(root); err != nil {
			return nil, fmt.Errorf("--root %w", err)
		}
	}
	if err := hostdir.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("root %s: %w", root, err)
	}
	h := &Host{layout: Layout{Root: root}, opts: opts}
	if opts.Containers {
		if _, err := h.engine(ctx); err != nil {
			h.Close()
			return nil, err
		}
	}
	return h, nil
}

// Layout is the root's layout.
func (h *Host) Layout() Layout { return h.layout }

// Close releases what the Host opened (the storage pool's mounts, a
// remote runtime's connection).
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	if h.local != nil {
		errs = append(errs, h.local.Close())
		h.local = nil
	}
	if h.drv != nil {
		errs = append(errs, h.drv.Close())
		h.drv = nil
	}
	if c, ok := h.rt.(io.Closer); ok {
		errs = append(errs, c.Close())
		h.rt = nil
	}
	return errors.Join(errs...)
}

// state opens the state journal once.
func (h *Host) state() (*state.Store, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st == nil {
		st, err := state.Open(h.layout.State())
		if err != nil {
			return nil, err
		}
		h.st = st
	}
	return h.st, nil
}

// runtime opens the container runtime once: local LXC, or the remote
// Options.Remote names.
func (h *Host) runtime(ctx context.Context) (container.Runtime, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rt == nil {
		if h.opts.Remote != "" {
			rt, err := connectRemote(ctx, h.layout.Root, h.opts.Remote)
			if err != nil {
				return nil, err
			}
			h.rt = rt
			return h.rt, nil
		}
		rt, err := lxcrt.New(h.layout.Containers())
		if err != nil {
			return nil, err
		}
		h.rt = rt
	}
	return h.rt, nil
}

// Images opens the image store once.
func (h *Host) Images() (*images.Store, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.imgs == nil {
		s, err := images.Open(h.layout.Images())
		if err != nil {
			return nil, err
		}
		h.imgs = s
	}
	return h.imgs, nil
}

// storageConfig is the pool the set's [storage] table names.
func (h *Host) storageConfig() (storage.Config, error) {
	cfg := storage.Config{Driver: "auto", Root: h.layout.Root}
	if h.opts.Set == nil {
		if mem, ok, err := h.rememberedStorage(); err != nil || ok {
			return mem, err
		}
	}
	if s := h.opts.Set; s != nil {
		st := s.Storage
		cfg = storage.Config{Driver: st.Driver, Root: h.layout.Root, Path: st.Path, Size: st.Size,
			Dataset: st.Dataset, VG: st.VG, Thinpool: st.Thinpool}
		if cfg.Driver == "" {
			cfg.Driver = "auto"
		}
	}
	return cfg, nil
}

// engine opens every part and wires the job engine, once.
func (h *Host) engine(ctx context.Context) (*Runner, error) {
	h.mu.Lock()
	r := h.runner
	h.mu.Unlock()
	if r != nil {
		return r, nil
	}
	if h.opts.Remote != "" {
		return h.remoteEngine(ctx)
	}
	if h.opts.Containers {
		PrimeStarts() // starts follow; each launch holds its own priming
	}
	idm, err := idmap.Ensure("/etc/subuid", "/etc/subgid")
	if err != nil {
		return nil, err
	}
	st, err := h.state()
	if err != nil {
		return nil, err
	}
	cfg, err := h.storageConfig()
	if err != nil {
		return nil, err
	}
	if cfg.Path != "" { // a pool outside --root: the same rule as for --root
		if err := hostdir.CheckReachable(cfg.Path); err != nil {
			return nil, fmt.Errorf("storage path %w", err)
		}
	}
	drv, err := storage.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if h.opts.Set != nil {
		if err := h.rememberStorage(cfg); err != nil {
			drv.Close()
			return nil, err
		}
	}
	imgs, err := h.Images()
	if err != nil {
		drv.Close()
		return nil, err
	}
	rt, err := h.runtime(ctx)
	if err != nil {
		drv.Close()
		return nil, err
	}
	nm, err := stintnet.Open(h.layout.Root)
	if err != nil {
		drv.Close()
		return nil, err
	}
	r = &Runner{
		Runtime:   rt,
		Storage:   drv,
		State:     st,
		IDMap:     idm,
		CacheDir:  h.layout.Cache(),
		LogDir:    h.layout.Logs(),
		Collect:   CollectLocal,
		Net:       nm,
		HostUser:  h.hostUser,
		VolumeDir: h.layout.Volumes(),
		AgentDir:  h.layout.Agents(),
		SpecDir:   h.layout.Reconcile(),
		Getenv:    h.opts.Getenv,

		BuildOutput: h.opts.BuildOutput,
	}
	// [image.X] from = ...: built by the runner in its containers.
	r.Images = &StoreImages{Store: imgs, Set: h.opts.Set, Recipes: r}
	h.mu.Lock()
	h.drv, h.nm, h.runner = drv, nm, r
	h.mu.Unlock()
	return r, nil
}

// RunOptions are how RunJobs runs a batch of jobs.
type RunOptions struct {
	// Parallel runs at most this many jobs at once (at least 1).
	Parallel int
	// ArtifactsDir receives each job's artifacts (<dir>/<job>/).
	ArtifactsDir string
	// KeepOnFailure keeps failed jobs' containers.
	KeepOnFailure bool
	// Output receives every job's output, prefixed by the job's name.
	Output io.Writer
	// Events receives the jobs' progress events; nil ignores them.
	Events func(output.Event)
}

// RunJobs runs jobs and returns their results in the jobs' order. An error
// is the host's, before any job ran (the artifacts directory).
func (h *Host) RunJobs(ctx context.Context, jobs []spec.Job, opts RunOptions) ([]Result, error) {
	r, err := h.engine(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.refuseCommit(jobs); err != nil {
		return nil, err
	}
	// Open the artifacts base before any job runs: a job with a writable
	// bind mount over the working directory could otherwise replace it with
	// a symlink, and the collector can't tell that from a link the user chose.
	if err := os.MkdirAll(opts.ArtifactsDir, 0o755); err != nil {
		return nil, fmt.Errorf("artifacts directory: %w", err)
	}
	base, err := os.Open(opts.ArtifactsDir)
	if err != nil {
		return nil, fmt.Errorf("artifacts directory: %w", err)
	}
	defer base.Close()
	// The engine's own fields, not a copy's: recipe builds a job's image
	// needs run on it too (StoreImages.Recipes), with the same output.
	h.mu.Lock()
	r.ArtifactsDir, r.ArtifactsBase, r.KeepOnFailure = opts.ArtifactsDir, base, opts.KeepOnFailure
	r.Output, r.Events = opts.Output, opts.Events
	h.mu.Unlock()
	return r.RunJobs(ctx, jobs, opts.Parallel), nil
}

// Exec runs argv in an ad hoc ephemeral container made as for job (see
// Runner.Exec), with the caller's streams.
func (h *Host) Exec(ctx context.Context, job spec.Job, argv []string, stdio container.ExecOptions) (container.ExitStatus, error) {
	r, err := h.execRunner(ctx, job)
	if err != nil {
		return container.ExitStatus{}, err
	}
	return r.Exec(ctx, job, argv, stdio)
}

// ExecTerminal is Exec with a terminal: one opened in the container's own
// devpts (`tty` names it there), its master handed to attach, which copies
// between it and the caller's terminal; the func attach returns is called
// once the command ended.
func (h *Host) ExecTerminal(ctx context.Context, job spec.Job, argv []string, attach AttachFunc) (container.ExitStatus, error) {
	r, err := h.execRunner(ctx, job)
	if err != nil {
		return container.ExitStatus{}, err
	}
	return r.exec(ctx, job, argv, container.ExecOptions{}, attach)
}

// execRunner is the engine for an exec of job.
func (h *Host) execRunner(ctx context.Context, job spec.Job) (*Runner, error) {
	r, err := h.engine(ctx)
	if err != nil {
		return nil, err
	}
	if job.Image == "busybox" && h.opts.Set == nil {
		// The busybox image needs no spec: built on first use, unless the
		// store has one of that name already.
		si := &StoreImages{Store: r.Images.(*StoreImages).Store, Recipes: r}
		if _, err := si.Store.Resolve("busybox"); err != nil {
			si.Set = &spec.Set{Images: []spec.Image{{Name: "busybox", Builder: "busybox"}}}
		}
		h.mu.Lock()
		r.Images = si
		h.mu.Unlock()
	}
	return r, nil
}

// GC removes what dead stint processes left behind (see Runner.GC).
func (h *Host) GC(ctx context.Context, opts GCOptions) (GCResult, error) {
	r, err := h.engine(ctx)
	if err != nil {
		return GCResult{}, err
	}
	if h.opts.Remote != "" {
		return r.gcRemote(ctx, opts)
	}
	return r.GC(ctx, opts)
}

// BuildImage builds the set's [image.name] (and what it derives from),
// recipes in containers with their output streamed to out (nil: to their
// build logs only, see Runner.BuildOutput).
func (h *Host) BuildImage(ctx context.Context, name string, aliases []string, out io.Writer) (*images.Image, error) {
	r, err := h.engine(ctx)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	r.BuildOutput = out
	si := r.Images.(*StoreImages)
	h.mu.Unlock()
	return si.Build(ctx, name, aliases)
}

// DestroyGoldens destroys the golden volumes of the image with fingerprint
// fp in the root's default pool, if jobs ever ran here. An error wrapping
// ErrInUse (a *GoldenInUseError) names the containers cloned from them.
func (h *Host) DestroyGoldens(ctx context.Context, fp string) error {
	if h.opts.Remote != "" {
		return nil // a remote makes roots from images: no golden volume here
	}
	h.mu.Lock()
	drv := h.drv
	h.mu.Unlock()
	if drv == nil {
		cfg, err := h.storageConfig()
		if err != nil {
			return err
		}
		if _, err := os.Stat(storage.PoolPath(cfg)); err != nil {
			return nil // no pool: no golden volume
		}
		r, err := h.engine(ctx)
		if err != nil {
			return err
		}
		drv = r.Storage
	}
	_, err := DestroyGoldens(ctx, drv, fp)
	return err
}

// ErrInUse: a volume (an image's golden) has containers cloned from it.
var ErrInUse = storage.ErrInUse

// Entry is one container stint owns: its record and its runtime state.
type Entry struct {
	state.Record
	State container.State
}

// Ps lists the containers stint owns with their states ("unknown" when the
// runtime can't say).
func (h *Host) Ps(ctx context.Context) ([]Entry, error) {
	st, err := h.state()
	if err != nil {
		return nil, err
	}
	recs, err := st.List()
	if err != nil {
		return nil, err
	}
	rt, err := h.runtime(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(recs))
	for _, r := range recs {
		if r.Remote != h.opts.Remote {
			continue // another runtime's: ps with its --remote shows it
		}
		s, err := rt.State(ctx, r.Name)
		if err != nil {
			s = "unknown"
		}
		if s == container.StateStopped && r.Phase == state.PhaseRunning {
			// Its PID 1 ended since it was started: the record is behind.
			r.Phase = state.PhaseStopped
		}
		out = append(out, Entry{Record: r, State: s})
	}
	if h.opts.Remote != "" {
		return h.remoteEntries(ctx, rt, out) // remote.go
	}
	return out, nil
}

// ErrNoContainer: no long-lived container has the name asked for.
var ErrNoContainer = errors.New("no such long-lived container")

// AmbiguousNameError: a name matches long-lived containers of several sets.
type AmbiguousNameError struct {
	Name    string
	Matches []string
}

func (e *AmbiguousNameError) Error() string {
	return fmt.Sprintf("%q is ambiguous: %v", e.Name, e.Matches)
}

// ConsoleLog returns the console log's path of long-lived container name
// (SET.NAME, or NAME when only one set has it).
func (h *Host) ConsoleLog(name string) (string, error) {
	st, err := h.state()
	if err != nil {
		return "", err
	}
	recs, err := st.List()
	if err != nil {
		return "", err
	}
	r, err := findContainer(recs, name)
	if err != nil {
		return "", err
	}
	return h.layout.ConsoleLog(r.Name), nil
}

// Containers returns the reconcile backend of the root's long-lived
// containers, using set. With Options.Containers it can make containers;
// without, it only observes (plan: state records, the runtime, stored
// specs; no storage pool, no image is built).
func (h *Host) Containers(ctx context.Context, set *spec.Set) (*LongLived, error) {
	if h.opts.Remote != "" {
		return h.remoteContainers(ctx, set) // longlived_remote.go
	}
	var r *Runner
	if h.opts.Containers {
		var err error
		if r, err = h.engine(ctx); err != nil {
			return nil, err
		}
	} else {
		st, err := h.state()
		if err != nil {
			return nil, err
		}
		rt, err := h.runtime(ctx)
		if err != nil {
			return nil, err
		}
		r = &Runner{Runtime: rt, State: st}
	}
	b := &LongLived{Runner: r, SpecDir: h.layout.Reconcile(), LogDir: h.layout.Logs()}
	if h.opts.Containers {
		imgs := r.Images.(*StoreImages).Store
		b.Images = func(s *spec.Set) ImageResolver { return &StoreImages{Store: imgs, Set: s, Recipes: r} }
	}
	b.UseSet(set)
	return b, nil
}

// NetworkState is stint's host-wide network state: bridges and leases.
type NetworkState = stintnet.State

// Networks returns the network state as the root at root sees it (the
// state is host-wide; the root only says which leases are its own). It
// needs no Host: nothing under the root is opened or made.
func Networks(ctx context.Context, root string) (*NetworkState, error) {
	m, err := stintnet.Open(root)
	if err != nil {
		return nil, err
	}
	return m.List(ctx)
}

// PruneNetworks removes the bridges, rules and files no container uses
// (of any root: a bridge a lease of another root uses stays).
func PruneNetworks(ctx context.Context, root string) error {
	m, err := stintnet.Open(root)
	if err != nil {
		return err
	}
	return m.Prune(ctx)
}

// CollectLocal is the CollectFunc of a local root directory (a RootDirer's
// view, or a clone): symlink-safe reads with openat2 (runner/artifact).
func CollectLocal(ctx context.Context, rootfs string, arts []spec.Artifact, dest string, failed bool, idm *idmap.Map) (artifact.Result, error) {
	return artifact.CollectWith(ctx, rootfs, arts, dest, failed, artifact.Options{IDMap: idm})
}
