package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/stintdev/stint/internal/idmap"
	stintnet "github.com/stintdev/stint/net"
	"github.com/stintdev/stint/runner/artifact"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/output"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
	"github.com/stintdev/stint/storage"
)

// Image is a job's image, resolved: its fingerprint and how to unpack its
// root filesystem into an empty directory (for the golden volume).
type Image struct {
	Fingerprint string
	Source      storage.Source
	// Render, when set, renders the image's templates into a clone for
	// container name; uid and gid are the container root's host ids.
	Render func(rootfs, name string, privileged bool, uid, gid int) error
}

// ImageResolver finds (building or importing when needed) the image a job
// names: an [image.*] name of the set, an alias or a fingerprint prefix.
type ImageResolver interface {
	ResolveImage(ctx context.Context, ref string) (Image, error)
}

// CollectFunc copies a job's artifacts out of its root filesystem into dest,
// never following a symlink out of rootfs; it returns the container paths it
// copied.
type CollectFunc func(ctx context.Context, rootfs string, arts []spec.Artifact, dest string, jobFailed bool) ([]string, error)

// Runner runs ephemeral jobs. Its fields are set once; RunJob and RunJobs
// are safe for concurrent use.
type Runner struct {
	Runtime container.Runtime
	Storage storage.Driver
	State   *state.Store
	Images  ImageResolver
	// IDMap is the unprivileged containers' user namespace.
	IDMap idmap.Map
	// CacheDir holds cache volumes (<root>/cache/<name>).
	CacheDir string
	// ArtifactsDir is where each job's artifacts go (<dir>/<job>/).
	ArtifactsDir string
	// ArtifactsBase, when set, is ArtifactsDir opened before any job ran:
	// artifacts are written beneath this directory even if a job (through a
	// writable bind mount) renames it or replaces its path with a symlink.
	ArtifactsBase *os.File
	// LogDir keeps each job's output (<dir>/<container>.log).
	LogDir string
	// Collect copies artifacts (runner/artifact); nil collects nothing.
	Collect CollectFunc
	// Output receives every job's output, each line prefixed by the job's
	// name; nil discards it.
	Output io.Writer
	// Events receives the job's progress (runner/output's events: steps,
	// phases with their durations, artifacts); nil ignores it. Called from
	// the jobs' goroutines, one call at a time.
	Events func(output.Event)
	// KeepOnFailure keeps failed jobs' containers (or the job's own key).
	KeepOnFailure bool
	// Net attaches bridge-mode containers; nil: bridge mode is refused.
	Net *stintnet.Manager

	evMu  sync.Mutex
	outMu sync.Mutex
	locks *goldenLocks // one builder per golden volume; shared by copies (with)
}

// goldenLocks serialise the making of each golden volume in this process.
type goldenLocks struct {
	mu sync.Mutex
	by map[string]*sync.Mutex
}

var locksInit sync.Mutex

// goldenLocks returns r's golden-volume locks, made on first use.
func (r *Runner) goldenLocks() *goldenLocks {
	locksInit.Lock()
	defer locksInit.Unlock()
	if r.locks == nil {
		r.locks = &goldenLocks{by: map[string]*sync.Mutex{}}
	}
	return r.locks
}

// lock returns the lock of golden volume id.
func (l *goldenLocks) lock(id string) *sync.Mutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	mu := l.by[id]
	if mu == nil {
		mu = &sync.Mutex{}
		l.by[id] = mu
	}
	return mu
}

// Outcome of a job.
const (
	OutcomePassed  = "passed"
	OutcomeFailed  = "failed"  // a line failed
	OutcomeTimeout = "timeout" // the job's timeout killed it
	OutcomeAborted = "aborted" // SIGINT/SIGTERM (context cancelled)
	OutcomeError   = "error"   // a host failure: storage, LXC, image
)

// Result is one job's summary.
type Result struct {
	Job       string                `json:"job"`
	Container string                `json:"container"`
	Outcome   string                `json:"outcome"`
	Line      int                   `json:"line,omitempty"` // 1-based index of the failing line
	Command   string                `json:"command,omitempty"`
	Status    *container.ExitStatus `json:"status,omitempty"`
	Error     string                `json:"error,omitempty"`
	Duration  time.Duration         `json:"duration"`            // nanoseconds in JSON
	Artifacts string                `json:"artifacts,omitempty"` // the job's artifact directory
	Files     []string              `json:"files,omitempty"`
	Log       string                `json:"log,omitempty"`
	Kept      bool                  `json:"kept,omitempty"`
}

// Passed reports whether the job passed.
func (r Result) Passed() bool { return r.Outcome == OutcomePassed }

// HostFailure reports whether the job failed because of the host, not itself.
func (r Result) HostFailure() bool { return r.Outcome == OutcomeError }

// RunJobs runs jobs, at most parallel at once, and returns their results in
// the jobs' order.
func (r *Runner) RunJobs(ctx context.Context, jobs []spec.Job, parallel int) []Result {
	if parallel < 1 {
		parallel = 1
	}
	results := make([]Result, len(jobs))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = Result{Job: j.Name, Outcome: OutcomeAborted, Error: "not started: " + ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			results[i] = r.RunJob(ctx, j)
		}()
	}
	wg.Wait()
	return results
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9-]+`)

// ContainerName is a fresh, unique container name for a job: stint-<job>-<random>.
func ContainerName(job string) string {
	base := strings.Trim(unsafeChars.ReplaceAllString(job, "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "stint-" + base + "-" + hex.EncodeToString(b[:])
}

// RunJob runs one job to the end and tears it down, whatever happens:
// resolve the image, make its golden volume once, journal the container,
// clone, configure, start, run each line, collect artifacts, tear down.
// Cancelling ctx (SIGINT, SIGTERM) aborts the job and still tears it down.
func (r *Runner) RunJob(ctx context.Context, job spec.Job) (res Result) {
	start := time.Now()
	res = Result{Job: job.Name, Container: ContainerName(job.Name)}
	res.Artifacts = filepath.Join(r.ArtifactsDir, unsafeDir(job.Name))
	r.emit(output.Event{Type: output.EventJobStarted, Job: job.Name, Container: res.Container})
	defer func() {
		res.Duration = time.Since(start).Round(time.Millisecond)
		r.emit(withStatus(output.Event{Type: output.EventJobFinished, Job: job.Name, Container: res.Container,
			Result: res.Outcome, Step: res.Line, Command: res.Command, Error: res.Error,
			Millis: time.Since(start).Milliseconds(), Dest: res.Artifacts, Log: res.Log, Kept: res.Kept}, res.Status))
	}()
	hostErr := func(err error) Result {
		res.Outcome = OutcomeError
		var hook *HookError
		switch {
		case ctx.Err() != nil:
			res.Outcome = OutcomeAborted
		case errors.As(err, &hook):
			// A recipe hook the job's image needs failed: the user's code, not the host.
			res.Outcome = OutcomeFailed
		}
		res.Error = err.Error()
		return res
	}

	inst, err := r.launch(ctx, job, res.Container, state.KindJob)
	// Teardown runs on every path once the record exists, with a context
	// of its own: an aborted job's context is already cancelled.
	keep := false
	if inst.h != nil {
		defer func() {
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			t := time.Now()
			if keep {
				if err := r.keep(tctx, inst.h); err != nil {
					res.Error = joinMsg(res.Error, err.Error())
				} else {
					res.Kept = true
				}
			} else if err := r.teardown(tctx, inst.h); err != nil {
				res.Error = joinMsg(res.Error, err.Error())
				if res.Outcome == OutcomePassed {
					res.Outcome = OutcomeError
				}
			}
			r.phase(job.Name, output.PhaseDestroy, t)
			r.emit(output.Event{Type: output.EventTeardownDone, Job: job.Name, Container: res.Container, Millis: time.Since(t).Milliseconds(), Error: res.Error})
		}()
	}
	if err != nil {
		return hostErr(err)
	}
	vol, user, env := inst.vol, inst.user, inst.env

	logw, logPath, err := r.openLog(res.Container)
	if err != nil {
		return hostErr(fmt.Errorf("job %s: %w", job.Name, err))
	}
	defer logw.Close()
	res.Log = logPath
	pw := &prefixWriter{mu: &r.outMu, w: r.Output, prefix: "[" + job.Name + "] "}
	defer pw.Flush()
	out := io.MultiWriter(logw, pw)

	runCtx := ctx
	if job.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, time.Duration(job.Timeout))
		defer cancel()
	}
	// A timeout or a signal kills the whole container, not just the
	// attached client: every process of the job dies, and the running
	// line's Exec returns.
	stopOnDone := context.AfterFunc(runCtx, func() {
		_ = r.Runtime.Stop(context.WithoutCancel(ctx), res.Container)
	})
	defer stopOnDone()
	res.Outcome = OutcomePassed
	t := time.Now()
	for i, line := range job.Run {
		if runCtx.Err() != nil {
			res.Outcome = r.interrupted(ctx, &res, job, i, line)
			break
		}
		r.emit(output.Event{Type: output.EventStepStarted, Job: job.Name, Step: i + 1, Command: line})
		stepStart := time.Now()
		fmt.Fprintf(logw, "+ %s\n", line)
		st, err := r.Runtime.Exec(context.WithoutCancel(ctx), res.Container, container.ExecOptions{
			Argv: []string{"/bin/sh", "-c", line}, Env: env,
			UID: user.UID, GID: user.GID, Groups: user.Groups, Cwd: job.Workdir, Stdout: out, Stderr: out,
		})
		if runCtx.Err() != nil {
			res.Outcome = r.interrupted(ctx, &res, job, i, line)
			r.emit(output.Event{Type: output.EventStepFinished, Job: job.Name, Step: i + 1, Command: line, Result: res.Outcome, Error: res.Error,
				Timeout: res.Outcome == OutcomeTimeout, Millis: time.Since(stepStart).Milliseconds()})
			break
		}
		if err != nil {
			res.Outcome, res.Line, res.Command, res.Error = OutcomeError, i+1, line, err.Error()
			r.emit(output.Event{Type: output.EventStepFinished, Job: job.Name, Step: i + 1, Command: line, Result: res.Outcome, Error: res.Error,
				Millis: time.Since(stepStart).Milliseconds()})
			break
		}
		r.emit(withStatus(output.Event{Type: output.EventStepFinished, Job: job.Name, Step: i + 1, Command: line,
			Millis: time.Since(stepStart).Milliseconds()}, &st))
		if !st.Success() {
			res.Outcome = OutcomeFailed
			res.Line, res.Command, res.Status = i+1, line, &st
			break
		}
	}
	t = r.phase(job.Name, output.PhaseExec, t)
	failed := res.Outcome != OutcomePassed
	if res.Outcome == OutcomeError {
		return res
	}

	// Artifacts before teardown. While the container still runs, they are
	// read through its own view (its mounts: binds, tmpfs, caches), with its
	// processes frozen so nothing changes under the copy; after a timeout
	// or an abort, from the clone's rootfs.
	if r.Collect != nil && len(job.Artifacts) > 0 {
		root := vol.Rootfs
		if st, err := r.Runtime.State(ctx, res.Container); err == nil && st == container.StateRunning && runCtx.Err() == nil {
			if fz, ok := r.Runtime.(container.Freezer); ok {
				_ = fz.Freeze(ctx, res.Container)
			}
			if rd, ok := r.Runtime.(container.RootDirer); ok {
				if p, err := rd.RootDir(ctx, res.Container); err == nil {
					root = p
				}
			}
		}
		dest := res.Artifacts
		if r.ArtifactsBase != nil {
			// The open directory, by its descriptor: not the path a job could swap.
			dest = filepath.Join(fmt.Sprintf("/proc/self/fd/%d", r.ArtifactsBase.Fd()), unsafeDir(job.Name))
		}
		// An unprivileged job's root reads only what its user namespace
		// allows: the copier must not read more for it (host files shown by
		// a bind, sysfs or proc mount). A privileged job's root is the host's.
		actx := context.WithoutCancel(ctx)
		if !job.Privileged {
			m := r.IDMap
			actx = artifact.WithIDMap(actx, &m)
		}
		files, err := r.Collect(actx, root, job.Artifacts, dest, failed)
		res.Files = files
		for _, f := range files {
			r.emit(output.Event{Type: output.EventArtifact, Job: job.Name, Artifact: f})
		}
		if err != nil {
			res.Error = joinMsg(res.Error, fmt.Sprintf("artifacts: %v", err))
			if !failed {
				res.Outcome = OutcomeError
			}
		}
		t = r.phase(job.Name, output.PhaseArtifacts, t)
	}
	if err := r.Runtime.Stop(context.WithoutCancel(ctx), res.Container); err != nil {
		return hostErr(fmt.Errorf("job %s: %w", job.Name, err))
	}
	r.phase(job.Name, output.PhaseStop, t)
	keep = failed && res.Outcome != OutcomeAborted && (r.KeepOnFailure || job.KeepOnFailure)
	return res
}

// instance is a started container and what was made for it.
type instance struct {
	h     *state.Handle // set once the record exists: from then on, tear down
	vol   storage.Volume
	user  User
	env   []string
	lease *stintnet.Lease // bridge mode
}

// launch makes and starts the container name for job: image, golden volume,
// state record (before any resource), clone, config, start. On error, a
// returned instance with a handle still needs teardown.
func (r *Runner) launch(ctx context.Context, job spec.Job, name, kind string) (*instance, error) {
	inst := &instance{}
	img, err := r.Images.ResolveImage(ctx, job.Image)
	if err != nil {
		return inst, fmt.Errorf("job %s: %w", job.Name, err) // the resolver names the image
	}
	golden, err := r.ensureGolden(ctx, img, job.Privileged)
	if err != nil {
		return inst, fmt.Errorf("job %s: %w", job.Name, err)
	}
	// The journal entry exists before any resource does: a kill -9 from
	// here on leaves a record that gc follows. The clone is named after the
	// record, so even a torn record is enough to find it.
	inst.h, err = r.State.Create(&state.Record{
		Name: name, Kind: kind, Job: job.Name, Image: img.Fingerprint,
		Driver: r.Storage.Name(), Volume: name, Phase: "creating",
	})
	if err != nil {
		return inst, fmt.Errorf("job %s: %w", job.Name, err)
	}
	t := time.Now()
	inst.vol, err = r.Storage.Clone(ctx, golden.ID, name)
	if err != nil {
		return inst, fmt.Errorf("job %s: clone %s from %s: %w", job.Name, name, golden.ID, err)
	}
	t = r.phase(job.Name, output.PhaseClone, t)
	if img.Render != nil {
		uid, gid := 0, 0
		if !job.Privileged {
			uid, gid = int(r.IDMap.HostUID), int(r.IDMap.HostGID)
		}
		if err := img.Render(inst.vol.Rootfs, name, job.Privileged, uid, gid); err != nil {
			return inst, fmt.Errorf("job %s: %w", job.Name, err)
		}
	}
	if job.Network.Mode == stintnet.ModeBridge {
		if inst.lease, err = r.attachBridge(ctx, inst.h, job.Network); err != nil {
			return inst, fmt.Errorf("job %s: %w", job.Name, err)
		}
	}
	cfg, err := r.containerConfig(job, inst.vol.Rootfs, inst.lease)
	if err != nil {
		return inst, fmt.Errorf("job %s: %w", job.Name, err)
	}
	inst.user, err = LookupUser(inst.vol.Rootfs, job.User)
	if err != nil {
		return inst, fmt.Errorf("job %s: %w", job.Name, err)
	}
	inst.env = JobEnv(job.Env, inst.user)
	if job.Workdir != "" {
		if err := r.makeWorkdir(inst.vol.Rootfs, job.Workdir, inst.user, job.Privileged); err != nil {
			return inst, fmt.Errorf("job %s: %w", job.Name, err)
		}
	}
	if err := r.Runtime.Create(ctx, name, cfg); err != nil {
		return inst, fmt.Errorf("job %s: %w", job.Name, err)
	}
	t = r.phase(job.Name, output.PhaseConfigure, t)
	if err := r.Runtime.Start(ctx, name); err != nil {
		return inst, fmt.Errorf("job %s: %w", job.Name, err)
	}
	r.phase(job.Name, output.PhaseStart, t)
	_ = inst.h.Update(func(rec *state.Record) { rec.Phase = "running" })
	return inst, nil
}

// attachBridge gives the container its bridge network (address, veth keys,
// hosts and resolv.conf) and journals the lease; teardown releases it.
func (r *Runner) attachBridge(ctx context.Context, h *state.Handle, n spec.Network) (*stintnet.Lease, error) {
	if r.Net == nil {
		return nil, fmt.Errorf("network mode bridge: no network manager configured")
	}
	lease, err := r.Net.Attach(ctx, stintnet.Request{Container: h.Name(), Mode: stintnet.ModeBridge, Bridge: n.Bridge, IPv4: n.IPv4})
	if err != nil {
		return nil, fmt.Errorf("attach network: %w", err)
	}
	raw, err := json.Marshal(lease)
	if err == nil {
		err = h.Update(func(rec *state.Record) { rec.Network = raw })
	}
	if err != nil {
		return nil, fmt.Errorf("journal network lease: %w", err)
	}
	return lease, nil
}

// makeWorkdir creates the job's working directory in its clone when the
// image lacks it, owned by the job's user (shifted into the id map), as
// `docker run -w` does. The path is resolved inside rootfs.
func (r *Runner) makeWorkdir(rootfs, dir string, u User, privileged bool) error {
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
	if !privileged {
		su, _ := r.IDMap.ShiftUID(uint32(uid))
		sg, _ := r.IDMap.ShiftGID(uint32(gid))
		uid, gid = int(su), int(sg)
	}
	if err := os.Lchown(p, uid, gid); err != nil {
		return fmt.Errorf("workdir %s: %w", dir, err)
	}
	return nil
}

// interrupted records why the job stopped at line i: its timeout, or ctx
// (SIGINT/SIGTERM).
func (r *Runner) interrupted(ctx context.Context, res *Result, job spec.Job, i int, line string) string {
	res.Line, res.Command = i+1, line
	if ctx.Err() != nil {
		res.Error = "aborted: " + context.Cause(ctx).Error()
		return OutcomeAborted
	}
	res.Error = fmt.Sprintf("timed out after %s", time.Duration(job.Timeout))
	return OutcomeTimeout
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// unsafeDir makes a job name (test[go=1.22]) usable as a directory name.
func unsafeDir(name string) string {
	return strings.NewReplacer("/", "_", "\x00", "_").Replace(name)
}

func (r *Runner) openLog(name string) (*os.File, string, error) {
	if r.LogDir == "" {
		f, err := os.Open(os.DevNull)
		return f, "", err
	}
	// Root's only: a job's output may print its secrets. Chmod too, for a
	// directory an older stint made 0755.
	if err := os.MkdirAll(r.LogDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("log directory: %w", err)
	}
	if err := os.Chmod(r.LogDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("log directory: %w", err)
	}
	p := filepath.Join(r.LogDir, name+".log")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("job log: %w", err)
	}
	return f, p, nil
}

// ensureGolden makes the image's golden volume once: its id names the image
// and the id map, so differently shifted goldens never share a name.
func (r *Runner) ensureGolden(ctx context.Context, img Image, privileged bool) (storage.Volume, error) {
	id := goldenID(img.Fingerprint, "priv")
	var opts storage.GoldenOptions
	if !privileged {
		m := r.IDMap
		id = goldenID(img.Fingerprint, m.Key())
		opts.Shift = &m
	}
	// One builder per golden in this process; across processes the driver
	// answers ErrExists to the loser, who then uses the winner's volume.
	mu := r.goldenLocks().lock(id)
	mu.Lock()
	defer mu.Unlock()

	v, err := r.Storage.Get(ctx, id)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return storage.Volume{}, fmt.Errorf("golden volume %s: %w", id, err)
	}
	v, err = r.Storage.CreateGolden(ctx, id, img.Source, opts)
	if errors.Is(err, storage.ErrExists) {
		v, err = r.Storage.Get(ctx, id)
	}
	if err != nil {
		return storage.Volume{}, fmt.Errorf("golden volume %s for image %s: %w", id, img.Fingerprint, err)
	}
	return v, nil
}

// containerConfig turns a job into a runtime Config.
func (r *Runner) containerConfig(job spec.Job, rootfs string, lease *stintnet.Lease) (container.Config, error) {
	network, err := networkConfig(job.Network.Mode, lease)
	if err != nil {
		return container.Config{}, err
	}
	cfg := container.Config{
		Root:       container.Root{Dir: rootfs},
		Privileged: job.Privileged,
		Limits:     container.Limits{Memory: job.Limits.Memory, CPUs: job.Limits.CPUs, Pids: job.Limits.Pids},
		Network:    network,
		Raw:        job.Raw,
	}
	if !job.Privileged {
		cfg.IDMap = &container.IDMap{HostUID: r.IDMap.HostUID, HostGID: r.IDMap.HostGID, Size: r.IDMap.Size}
	}
	mounts := append([]spec.Mount(nil), job.Mounts...)
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
			dir, err := r.cacheVolume(m.Name, job.Privileged)
			if err != nil {
				return container.Config{}, err
			}
			cfg.Mounts = append(cfg.Mounts, container.Mount{Type: container.MountBind, Source: dir, Target: m.Target, Readonly: m.Readonly})
		default:
			return container.Config{}, fmt.Errorf("mount %s: unknown type %q", m.Target, m.Type)
		}
	}
	return cfg, nil
}

var cacheName = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$`)

// cacheVolume returns the directory of cache volume name, made on first use
// and owned by the container's root (the map's first host id), so that an
// idmapped root can write to it. A privileged job's cache is root-owned and
// kept apart, so the two never fight over ownership.
func (r *Runner) cacheVolume(name string, privileged bool) (string, error) {
	if !cacheName.MatchString(name) {
		return "", fmt.Errorf("cache volume %q: invalid name", name)
	}
	if r.CacheDir == "" {
		return "", fmt.Errorf("cache volume %s: no cache directory configured", name)
	}
	uid, gid := int(r.IDMap.HostUID), int(r.IDMap.HostGID)
	dir := filepath.Join(r.CacheDir, name)
	if privileged {
		uid, gid = 0, 0
		dir = filepath.Join(r.CacheDir, ".privileged", name)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("cache volume %s: %w", name, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("cache volume %s: %w", name, err)
	} else if err == nil {
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", fmt.Errorf("cache volume %s: %w", name, err)
		}
	}
	return dir, nil
}
