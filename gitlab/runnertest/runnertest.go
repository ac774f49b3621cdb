// Package runnertest plays gitlab-runner's part for a custom executor
// driver, so that a driver is tested the way the runner really calls it
// (gitlab-runner executors/custom, common/build.go, shells/bash.go): config,
// prepare (retried), one run call per stage with a script generated as the
// runner's bash/sh shell writes it, and cleanup, each a process in its own
// process group, in a temporary directory, with the runner's environment.
//
// What it does not play: git (GIT_STRATEGY is none), artifacts (the runner
// has no GitLab URL, so upload stages are skipped as the runner skips them),
// feature-flag variables, and the runner binary's cache-extractor and
// cache-archiver (a job's cache is a tar file in the driver's cache_dir,
// made and read by tar in the job's container).
package runnertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Driver is a [runners.custom] section: each *_exec followed by its *_args.
type Driver struct {
	Config, Prepare, Run, Cleanup []string
}

// Job is the job the harness runs.
type Job struct {
	ID, ProjectID, RunnerID, ConcurrentProjectID int64
	ServerURL                                    string // default https://gitlab.example.com
	ProjectPath                                  string // default group/project
	Image                                        string // CI_JOB_IMAGE; empty: the job names none
	Services                                     []Service
	Script                                       []string // the job's script: lines
	AfterScript                                  []string
	Variables                                    []Variable // the job's own variables, after GitLab's
	Cache                                        *Cache
	Shell                                        string // sh (default) or bash; a config `shell` wins
}

// Service is a `services:` entry as the runner passes it in CI_JOB_SERVICES.
type Service struct {
	Name       string            `json:"name"`
	Alias      string            `json:"alias"`
	Entrypoint []string          `json:"entrypoint"`
	Command    []string          `json:"command"`
	Variables  map[string]string `json:"variables,omitempty"`
}

// Variable is a job variable; File variables are written to a file whose
// path the variable holds, as the runner's script does.
type Variable struct {
	Key, Value string
	File       bool
}

// Cache is a job's `cache:`.
type Cache struct {
	Key   string
	Paths []string // relative to the project dir
	When  string   // on_success (default) | on_failure | always
}

// Options are the runner's settings; zero values take the runner's
// defaults, except where a test can't wait that long (see each).
type Options struct {
	Env []string // the runner's own environment; nil: os.Environ()
	// Timeouts of the config, prepare and cleanup calls (config.toml's
	// *_exec_timeout; the runner's default is an hour each).
	ConfigTimeout, PrepareTimeout, CleanupTimeout time.Duration
	JobTimeout                                    time.Duration // the job's timeout, over every run call; default 1h
	// After SIGTERM, the runner waits GracefulKillTimeout (default 10m)
	// before SIGKILL, then ForceKillTimeout (default 10s).
	GracefulKillTimeout, ForceKillTimeout time.Duration
	RetryInterval                         time.Duration // between prepare attempts; default 3s
	// EOFGrace is how long after a call's process exits the harness waits
	// for end of file on its pipes before failing the call with
	// ErrPipesLeaked (the runner would wait until the timeout). Default 2s.
	EOFGrace time.Duration
	// BeforeStage, when set, runs before each run call; an error stops the
	// job there as a cancellation would (cleanup still runs).
	BeforeStage func(stage string) error `json:"-"`
	Trace       io.Writer                `json:"-"` // a live copy of the job log
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ConfigTimeout, time.Hour)
	def(&o.PrepareTimeout, time.Hour)
	def(&o.CleanupTimeout, time.Hour)
	def(&o.JobTimeout, time.Hour)
	def(&o.GracefulKillTimeout, 10*time.Minute)
	def(&o.ForceKillTimeout, 10*time.Second)
	def(&o.RetryInterval, 3*time.Second)
	def(&o.EOFGrace, 2*time.Second)
	if o.Env == nil {
		o.Env = os.Environ()
	}
	return o
}

// Kind says whose failure a job's failure is, as the runner reports it.
type Kind string

// Failure kinds.
const (
	ScriptFailure Kind = "script_failure"        // exit BUILD_FAILURE_EXIT_CODE
	SystemFailure Kind = "runner_system_failure" // exit SYSTEM_FAILURE_EXIT_CODE, any other code, a signal
)

// JobError is why a job failed.
type JobError struct {
	Kind     Kind
	ExitCode int    // ScriptFailure: from BUILD_EXIT_CODE_FILE, else 1
	Call     string // the call that failed: config, prepare, run <stage>
	Err      error
}

func (e *JobError) Error() string {
	return fmt.Sprintf("%s: %s (exit code %d): %v", e.Call, e.Kind, e.ExitCode, e.Err)
}

func (e *JobError) Unwrap() error { return e.Err }

// Result is what happened.
type Result struct {
	Calls   []Call
	Stages  []string // run calls made, in order
	Config  map[string]any
	Trace   string  // the job log: prepare's output and every stage's
	Err     error   // nil: the job passed; else a *JobError
	Leaks   []error // calls whose pipes outlived them (ErrPipesLeaked, ErrKillFailed)
	Elapsed time.Duration
}

// Run runs job through the driver as gitlab-runner would. The error is the
// harness's own (it could not make its temporary directory); the job's
// outcome is Result.Err.
func Run(ctx context.Context, d Driver, job Job, opts Options) (*Result, error) {
	r := &run{d: d, job: job, opts: opts.withDefaults(), res: &Result{}, status: "running"}
	r.job.defaults()
	start := time.Now()
	defer func() { r.res.Elapsed = time.Since(start) }()
	err := r.prepare(ctx)
	var setup *setupError
	if errors.As(err, &setup) {
		return nil, setup.err
	}
	if err == nil {
		err = r.stages(ctx)
		r.cleanup()
	}
	r.res.Err = err
	r.res.Trace = r.trace.String()
	for _, c := range r.res.Calls {
		if errors.Is(c.Err, ErrPipesLeaked) || errors.Is(c.Err, ErrKillFailed) {
			r.res.Leaks = append(r.res.Leaks, c.Err)
		}
	}
	return r.res, nil
}

func (j *Job) defaults() {
	if j.ServerURL == "" {
		j.ServerURL = "https://gitlab.example.com"
	}
	if j.ProjectPath == "" {
		j.ProjectPath = "group/project"
	}
	if j.Shell == "" {
		j.Shell = "sh"
	}
}

type setupError struct{ err error }

func (e *setupError) Error() string { return e.err.Error() }

// run is one job's state in the harness: the executor's temp dir and what
// config said.
type run struct {
	d          Driver
	job        Job
	opts       Options
	res        *Result
	trace      lockedBuffer
	tempDir    string // the executor's: TMPDIR, scripts, the response and exit code files
	cfg        configOutput
	buildsDir  string
	projectDir string
	status     string // CI_JOB_STATUS
}

// configOutput is the part of the config JSON the runner uses.
type configOutput struct {
	Hostname  *string            `json:"hostname"`
	BuildsDir *string            `json:"builds_dir"`
	CacheDir  *string            `json:"cache_dir"`
	Shared    *bool              `json:"builds_dir_is_shared"`
	JobEnv    *map[string]string `json:"job_env"`
	Shell     *string            `json:"shell"`
	Driver    *struct {
		Name    *string `json:"name"`
		Version *string `json:"version"`
	} `json:"driver"`
}

func (r *run) shell() string {
	if r.cfg.Shell != nil && *r.cfg.Shell != "" {
		return *r.cfg.Shell
	}
	return r.job.Shell
}

func (r *run) cacheDir() string {
	if r.cfg.CacheDir != nil && *r.cfg.CacheDir != "" {
		return *r.cfg.CacheDir
	}
	return "/cache"
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.traceWriter(), format+"\n", args...)
}

func (r *run) traceWriter() io.Writer {
	if r.opts.Trace != nil {
		return io.MultiWriter(&r.trace, r.opts.Trace)
	}
	return &r.trace
}

// newExecutor is provider.Create + the start of executor.Prepare: a fresh
// temp dir with the job response file.
func (r *run) newExecutor() error {
	dir, err := os.MkdirTemp("", "custom-executor")
	if err != nil {
		return &setupError{fmt.Errorf("executor temp dir: %w", err)}
	}
	r.tempDir = dir
	r.cfg = configOutput{}
	r.buildsDir, r.projectDir = "", ""
	resp, _ := json.Marshal(map[string]any{"id": r.job.ID, "image": map[string]string{"name": r.job.Image},
		"services": r.job.Services, "variables": r.variables()})
	if err := os.WriteFile(filepath.Join(dir, "response.json"), append(resp, '\n'), 0o600); err != nil {
		return &setupError{fmt.Errorf("job response file: %w", err)}
	}
	return nil
}
