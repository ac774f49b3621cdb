package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/internal/lazyre"
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
	// RenderStart, when set, renders the templates an image wants at every
	// start (LXD's "start"), for a long-lived container's starts.
	RenderStart func(rootfs, name string, privileged bool, uid, gid int) error
	// Defaults are what the image asks of a job's process when the spec
	// does not say (an OCI image's config: env, working directory, user).
	Defaults ImageDefaults
	// Cached: the image was in the store already; resolving it built,
	// pulled or imported nothing.
	Cached bool
}

// ImageResolver finds (building or importing when needed) the image a job
// names: an [image.*] name of the set, an alias or a fingerprint prefix.
type ImageResolver interface {
	ResolveImage(ctx context.Context, ref string) (Image, error)
}

// CollectFunc copies a job's artifacts out of its root filesystem into dest,
// never following a symlink out of rootfs, reading only what the root of id
// map idm could (nil: a privileged job); it says what it copied, linked and
// skipped. CollectLocal is the local one.
type CollectFunc func(ctx context.Context, rootfs string, arts []spec.Artifact, dest string, jobFailed bool, idm *idmap.Map) (artifact.Result, error)

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
	// BuildOutput receives recipe builds' output as it is made, each line
	// prefixed "[image NAME] "; nil: only their build logs have it, and a
	// failed build's error carries the last lines (BuildLogError).
	BuildOutput io.Writer
	// Events receives the job's progress (runner/output's events: steps,
	// phases with their durations, artifacts); nil ignores it. Called from
	// the jobs' goroutines, one call at a time.
	Events func(output.Event)
	// KeepOnFailure keeps failed jobs' containers (or the job's own key).
	KeepOnFailure bool
	// Net attaches bridge-mode containers; nil: bridge mode is refused.
	Net *stintnet.Manager
	// HostUser says who the invoking user is, for host_user; nil: unknown.
	HostUser HostUserFunc
	// VolumeDir keeps spec sets' volumes (<root>/volumes/<set>/...).
	VolumeDir string
	// AgentDir keeps containers' SSH agent socket directories.
	AgentDir string
	// SpecDir keeps what `stint shell` needs of kept jobs.
	SpecDir string
	// Getenv reads the caller's environment (SSH_AUTH_SOCK); nil: os.Getenv.
	Getenv func(string) string
	// Remote names the lxd remote whose runtime this is ("" local): its
	// records say so (runner/remote.go).
	Remote string
	// localBuilder, on a remote, opens the local engine recipe builds run
	// on (remote.go); nil elsewhere.
	localBuilder func(context.Context) (*Runner, error)

	evMu  sync.Mutex
	outMu sync.Mutex
	locks *goldenLocks // one builder per golden volume; shared by copies (with)
}

// Outcome is how a job ended (output.Outcome: the same names in events).
type Outcome = output.Outcome

// Outcomes of a job.
const (
	OutcomePassed  = output.ResultPassed
	OutcomeFailed  = output.ResultFailed  // a line failed
	OutcomeTimeout = output.ResultTimeout // the job's timeout killed it
	OutcomeAborted = output.ResultAborted // SIGINT/SIGTERM (context cancelled)
	OutcomeError   = output.ResultError   // a host failure: storage, LXC, image
)

// Result is one job's summary.
type Result struct {
	Job       string                `json:"job"`
	Container string                `json:"container"`
	Outcome   Outcome               `json:"outcome"`
	Line      int                   `json:"line,omitempty"` // 1-based index of the failing line
	Command   string                `json:"command,omitempty"`
	Status    *container.ExitStatus `json:"status,omitempty"`
	Error     string                `json:"error,omitempty"`
	Duration  time.Duration         `json:"duration"`            // nanoseconds in JSON; includes Image
	Image     time.Duration         `json:"image,omitempty"`     // of Duration, the time spent on the image and its golden volume
	Artifacts string                `json:"artifacts,omitempty"` // the job's artifact directory
	Files     []string              `json:"files,omitempty"`
	// Collected is the artifact collector's report: bytes, links, what
	// matched nothing or was skipped, and why.
	Collected artifact.Result `json:"-"`
	Log       string          `json:"log,omitempty"`
	Kept      bool            `json:"kept,omitempty"`
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

var unsafeChars = lazyre.New(`[^a-zA-Z0-9-]+`)

// ContainerName is a fresh, unique container name for a job: stint-<job>-<random>.
func ContainerName(job string) string {
	base := containerBase(job)
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "stint-" + base + "-" + hex.EncodeToString(b[:])
}

// containerBase is job's name as its containers' names hold it.
func containerBase(job string) string {
	base := strings.Trim(unsafeChars.ReplaceAllString(job, "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	return base
}

// RunJob runs one job to the end and tears it down, whatever happens:
// resolve the image, make its golden volume once, journal the container,
// clone, configure, start, run each line, collect artifacts, tear down.
// Cancelling ctx (SIGINT, SIGTERM) aborts the job and still tears it down.
func (r *Runner) RunJob(ctx context.Context, job spec.Job) (res Result) {
	start := time.Now()
	req := jobRequest(job, state.KindJob)
	res = Result{Job: job.Name, Container: req.Container, Artifacts: filepath.Join(r.ArtifactsDir, unsafeDir(job.Name))}
	r.emit(output.Event{Type: output.EventJobStarted, Job: job.Name, Container: res.Container})
	defer func() {
		res.Duration = time.Since(start).Round(time.Millisecond)
		r.emit(withStatus(output.Event{Type: output.EventJobFinished, Job: job.Name, Container: res.Container,
			Result: res.Outcome, Step: res.Line, Command: res.Command, Error: res.Error,
			Millis: time.Since(start).Milliseconds(), Dest: res.Artifacts, Log: res.Log, Kept: res.Kept,
			Files: res.Collected.Files(), Bytes: res.Collected.Bytes}, res.Status))
	}()
	if len(job.Services) > 0 {
		svcs, ok := r.jobServices(ctx, job, &req, &res)
		defer r.servicesDone(ctx, svcs, &res) // after the job's own teardown
		if !ok {
			return res
		}
	}
	r.session(ctx, req, func(inst *instance, err error) bool {
		res.Image = inst.imageTime.Round(time.Millisecond)
		if err != nil {
			r.hostErr(ctx, &res, err)
			return false
		}
		return r.runJob(ctx, job, inst, &res)
	}, func(kept bool, terr error, t time.Time) {
		if terr != nil {
			res.Error = joinMsg(res.Error, terr.Error())
			if res.Outcome == OutcomePassed {
				res.Outcome = OutcomeError
			}
		}
		res.Kept = kept
		r.phase(job.Name, output.PhaseDestroy, t)
		// Teardown's own error only: the job's is in job_finished.
		var tmsg string
		if terr != nil {
			tmsg = terr.Error()
		}
		r.emit(output.Event{Type: output.EventTeardownDone, Job: job.Name, Container: res.Container, Millis: time.Since(t).Milliseconds(), Error: tmsg})
	})
	return res
}

// hostErr records err as the job's end: a host failure, unless ctx was
// cancelled (aborted) or a recipe hook the job's image needs failed (the
// user's code, not the host).
func (r *Runner) hostErr(ctx context.Context, res *Result, err error) {
	res.Outcome = OutcomeError
	var hook *HookError
	switch {
	case ctx.Err() != nil:
		res.Outcome = OutcomeAborted
	case errors.As(err, &hook):
		res.Outcome = OutcomeFailed
	}
	res.Error = err.Error()
}

// runJob runs the started job's lines, collects its artifacts and stops
// it; it reports whether to keep the container (a failed job, asked to).
func (r *Runner) runJob(ctx context.Context, job spec.Job, inst *instance, res *Result) (keep bool) {
	logw, logPath, err := r.openLog(res.Container, job.Name)
	if err != nil {
		r.hostErr(ctx, res, fmt.Errorf("job %s: %w", job.Name, err))
		return false
	}
	defer logw.Close()
	res.Log = logPath
	pw := &prefixWriter{mu: &r.outMu, w: r.Output, prefix: "[" + job.Name + "] "}
	defer pw.Flush()

	runCtx := ctx
	if job.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, time.Duration(job.Timeout))
		defer cancel()
	}
	// A timeout or a signal kills the whole container, not just the
	// attached client: every process of the job dies, and the running
	// line's Exec returns.
	stopped := make(chan struct{})
	stopOnDone := context.AfterFunc(runCtx, func() {
		defer close(stopped)
		_ = r.Runtime.Stop(context.WithoutCancel(ctx), res.Container)
	})
	defer stopOnDone()
	t := time.Now()
	r.runLines(ctx, runCtx, job, inst, logw, io.MultiWriter(logw, pw), res)
	r.noteFullPool(ctx, inst, res)
	if runCtx.Err() != nil {
		// The stop above runs (or will): wait for it, so that nothing
		// (a remote's delete) races a stop still under way.
		<-stopped
	}
	t = r.phase(job.Name, output.PhaseExec, t)
	failed := res.Outcome != OutcomePassed
	if res.Outcome == OutcomeError {
		return false
	}
	if r.Collect != nil && len(job.Artifacts) > 0 {
		r.collect(ctx, runCtx.Err() == nil, job, inst, failed, res, logw)
		t = r.phase(job.Name, output.PhaseArtifacts, t)
	}
	kept := failed && res.Outcome != OutcomeAborted && (r.KeepOnFailure || job.KeepOnFailure)
	if !kept && container.CapabilitiesOf(r.Runtime).ImageRoot {
		// A remote's Destroy force-stops, and the stop deletes the
		// ephemeral instance: a Stop first would clear its ephemeral flag
		// (one more request) for nothing.
		r.phase(job.Name, output.PhaseStop, t)
		return false
	}
	if err := r.Runtime.Stop(context.WithoutCancel(ctx), res.Container); err != nil {
		r.hostErr(ctx, res, fmt.Errorf("job %s: %w", job.Name, err))
		return false
	}
	r.phase(job.Name, output.PhaseStop, t)
	// A remote's caches are its volumes, never committed (usesVolumes):
	// skipping this with the stop above loses nothing.
	if err := r.commitCaches(ctx, inst.req, res.Outcome); err != nil {
		r.hostErr(ctx, res, fmt.Errorf("job %s: %w", job.Name, err))
		return false
	}
	return kept
}

// runLines runs each line of job through its shell (lineArgv) until one fails, the
// job times out (runCtx) or ctx is cancelled, and records how it ended.
func (r *Runner) runLines(ctx, runCtx context.Context, job spec.Job, inst *instance, logw, out io.Writer, res *Result) {
	res.Outcome = OutcomePassed
	shell := job.Shell
	if shell == "" {
		shell = defaultShell(inst.vol.Rootfs)
	}
	for i, line := range job.Run {
		if runCtx.Err() != nil {
			res.Outcome = r.interrupted(ctx, res, job, i, line)
			return
		}
		r.emit(output.Event{Type: output.EventStepStarted, Job: job.Name, Step: i + 1, Command: line})
		stepStart := time.Now()
		fmt.Fprintf(logw, "+ %s\n", line)
		st, err := r.Runtime.Exec(context.WithoutCancel(ctx), res.Container, container.ExecOptions{
			Argv: lineArgv(shell, line), Env: inst.env,
			UID: inst.user.UID, GID: inst.user.GID, Groups: inst.user.Groups, Cwd: inst.req.Workdir, Stdout: out, Stderr: out,
		})
		ev := output.Event{Type: output.EventStepFinished, Job: job.Name, Step: i + 1, Command: line, Millis: time.Since(stepStart).Milliseconds()}
		switch {
		case runCtx.Err() != nil:
			res.Outcome = r.interrupted(ctx, res, job, i, line)
			ev.Result, ev.Error, ev.Timeout = res.Outcome, res.Error, res.Outcome == OutcomeTimeout
			r.emit(ev)
			return
		case err != nil:
			res.Outcome, res.Line, res.Command, res.Error = OutcomeError, i+1, line, err.Error()
			ev.Result, ev.Error = res.Outcome, res.Error
			r.emit(ev)
			return
		}
		r.emit(withStatus(ev, &st))
		if !st.Success() {
			res.Outcome = OutcomeFailed
			res.Line, res.Command, res.Status = i+1, line, &st
			return
		}
	}
}

// collect copies the job's artifacts before teardown. While the container
// still runs (running: the job was neither timed out nor aborted), they are
// read through its own view (its mounts: binds, tmpfs, caches), with its
// processes frozen so nothing changes under the copy; otherwise from the
// clone's rootfs.
func (r *Runner) collect(ctx context.Context, running bool, job spec.Job, inst *instance, failed bool, res *Result, logw io.Writer) {
	root := inst.vol.Rootfs
	if st, err := r.Runtime.State(ctx, res.Container); err == nil && st == container.StateRunning && running {
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
	// allows: the copier must not read more for it (host files shown by a
	// bind, sysfs or proc mount). A privileged job's root is the host's.
	var idm *idmap.Map
	if !job.Privileged {
		m := r.IDMap
		idm = &m
	}
	got, done, err := r.collectFS(context.WithoutCancel(ctx), job, failed, dest, res)
	if !done {
		got, err = r.Collect(context.WithoutCancel(ctx), root, job.Artifacts, dest, failed, idm)
	}
	res.Files, res.Collected = got.Copied, got
	r.reportArtifacts(job.Name, res.Artifacts, got, logw)
	if err != nil {
		res.Error = joinMsg(res.Error, fmt.Sprintf("artifacts: %v", err))
		switch {
		case failed:
		case errors.Is(err, artifact.ErrTooDeep), errors.Is(err, artifact.ErrDestRefused):
			res.Outcome = OutcomeFailed // the job's tree or workspace, not the host
		default:
			res.Outcome = OutcomeError
		}
	}
}

// interrupted records why the job stopped at line i: its timeout, or ctx
// (SIGINT/SIGTERM).
func (r *Runner) interrupted(ctx context.Context, res *Result, job spec.Job, i int, line string) Outcome {
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

// openLog creates the log of container name, recording job (if any) as the
// name of the job it logs (see JobLog).
func (r *Runner) openLog(name, job string) (*os.File, string, error) {
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
	if job != "" {
		if err := writeJobName(p, job); err != nil {
			return nil, "", err
		}
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("job log: %w", err)
	}
	return f, p, nil
}
