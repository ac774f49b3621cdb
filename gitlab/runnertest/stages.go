package runnertest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The runner's fixed exit codes (executors/custom/command).
const (
	buildFailureExitCode  = 1
	systemFailureExitCode = 2
	preparationRetries    = 3
	afterScriptTimeout    = 5 * time.Minute
)

// prepare is Build.retryCreateExecutor: up to three attempts of config then
// prepare, each failed attempt followed by cleanup; a build failure (exit 1)
// is not retried.
func (r *run) prepare(ctx context.Context) error {
	var err error
	for attempt := range preparationRetries {
		if attempt > 0 {
			r.logf("WARNING: Preparation failed: %v", err)
			r.logf("Will be retried in %s ...", r.opts.RetryInterval)
			select {
			case <-time.After(r.opts.RetryInterval):
			case <-ctx.Done():
				return &JobError{Kind: SystemFailure, Call: "prepare", Err: ctx.Err()}
			}
		}
		if serr := r.newExecutor(); serr != nil {
			return serr
		}
		err = r.prepareOnce(ctx)
		if err == nil {
			return nil
		}
		r.cleanup()
		var je *JobError
		if errors.As(err, &je) && je.Kind == ScriptFailure || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// prepareOnce is executor.Prepare: config (its stdout parsed as JSON, its
// stderr to the log), then prepare (both streams to the log).
func (r *run) prepareOnce(ctx context.Context) error {
	if len(r.d.Config) > 0 {
		c := r.call(ctx, "config", "", r.d.Config, spawn{timeout: r.opts.ConfigTimeout, stderr: r.traceWriter()})
		if err := r.outcome(c); err != nil {
			return err
		}
		if out := strings.TrimSpace(c.Stdout); out != "" {
			if err := json.Unmarshal([]byte(out), &r.cfg); err != nil {
				return &JobError{Kind: SystemFailure, Call: "config", Err: fmt.Errorf("error while parsing JSON output: %w", err)}
			}
			_ = json.Unmarshal([]byte(out), &r.res.Config)
		}
	}
	r.buildsDir = "/builds" // the runner's own default for the custom executor's builds_dir
	if r.cfg.BuildsDir != nil {
		r.buildsDir = *r.cfg.BuildsDir
	}
	r.projectDir = path.Join(r.buildsDir, r.job.ProjectPath)
	if r.cfg.Shared != nil && *r.cfg.Shared {
		r.projectDir = path.Join(r.buildsDir, "t0k3n", strconv.FormatInt(r.job.ConcurrentProjectID, 10), r.job.ProjectPath)
	}
	r.logStartup()
	if len(r.d.Prepare) == 0 {
		return nil
	}
	tw := r.traceWriter()
	c := r.call(ctx, "prepare", "", r.d.Prepare, spawn{timeout: r.opts.PrepareTimeout, stdout: tw, stderr: tw})
	return r.outcome(c)
}

func (r *run) logStartup() {
	d := r.cfg.Driver
	switch {
	case d == nil || d.Name == nil:
		r.logf("Using Custom executor...")
	case d.Version == nil:
		r.logf("Using Custom executor with driver %s...", *d.Name)
	default:
		r.logf("Using Custom executor with driver %s %s...", *d.Name, *d.Version)
	}
}

// stages is Build.executeScript for a job of script lines.
func (r *run) stages(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.JobTimeout)
	defer cancel()
	if err := r.stage(ctx, "prepare_script"); err != nil {
		return err
	}
	err := r.stage(ctx, "get_sources")
	if err == nil {
		err = r.stage(ctx, "restore_cache")
	}
	if err == nil {
		err = r.stage(ctx, "download_artifacts")
	}
	if err == nil {
		err = r.stage(ctx, "build_script")
		r.status = "success"
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			r.status = "timedout"
		case errors.Is(ctx.Err(), context.Canceled), errors.Is(err, errCanceled):
			r.status = "canceled"
		case err != nil:
			r.status = "failed"
		}
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), afterScriptTimeout)
		_ = r.stage(actx, "after_script") // AFTER_SCRIPT_IGNORE_ERRORS defaults to true
		acancel()
	}
	archive, upload := "archive_cache", "upload_artifacts_on_success"
	if err != nil {
		archive, upload = "archive_cache_on_failure", "upload_artifacts_on_failure"
	}
	archiveErr := r.stage(ctx, archive)
	uploadErr := r.stage(ctx, upload)
	if err == nil {
		err = errors.Join(archiveErr, uploadErr)
	}
	_ = r.stage(ctx, "cleanup_file_variables")
	return err
}

var errCanceled = errors.New("job canceled")

// stage is executor.Run for one stage: skipped when the runner's shell has
// nothing to write, else the script in <tmp>/scriptNNN/script and a run
// call with run_args, the script and the stage.
func (r *run) stage(ctx context.Context, stage string) error {
	script, ok := r.stageScript(stage)
	if !ok {
		return nil
	}
	if r.opts.BeforeStage != nil {
		if err := r.opts.BeforeStage(stage); err != nil {
			return &JobError{Kind: SystemFailure, Call: "run " + stage, Err: fmt.Errorf("%w: %w", errCanceled, err)}
		}
	}
	if ctx.Err() != nil {
		return &JobError{Kind: SystemFailure, Call: "run " + stage, Err: ctx.Err()}
	}
	dir, err := os.MkdirTemp(r.tempDir, "script")
	if err != nil {
		return &JobError{Kind: SystemFailure, Call: "run " + stage, Err: err}
	}
	file := filepath.Join(dir, "script")
	if err := os.WriteFile(file, []byte(script), 0o700); err != nil {
		return &JobError{Kind: SystemFailure, Call: "run " + stage, Err: err}
	}
	r.res.Stages = append(r.res.Stages, stage)
	argv := append(append([]string{}, r.d.Run...), file, stage)
	tw := r.traceWriter()
	c := r.call(ctx, "run", stage, argv, spawn{stdout: tw, stderr: tw})
	return r.outcome(c)
}

// cleanup is executor.Cleanup: the cleanup call with its own timeout on a
// fresh context (its output goes to the runner's log, not the job's), then
// the temp dir is removed.
func (r *run) cleanup() {
	if len(r.d.Cleanup) > 0 {
		r.call(context.Background(), "cleanup", "", r.d.Cleanup, spawn{timeout: r.opts.CleanupTimeout})
	}
	_ = os.RemoveAll(r.tempDir)
}

// call runs one driver call and keeps its record.
func (r *run) call(ctx context.Context, name, stage string, argv []string, sp spawn) *Call {
	c := &Call{Name: name, Stage: stage, Argv: argv, Env: r.env(), Dir: r.tempDir}
	r.exec(ctx, c, sp)
	r.res.Calls = append(r.res.Calls, *c)
	return c
}

// outcome is command.waitForCommand: 0 passes, 1 is a build failure whose
// code BUILD_EXIT_CODE_FILE may give, 2 or anything else a system failure.
func (r *run) outcome(c *Call) error {
	what := c.Name
	if c.Stage != "" {
		what += " " + c.Stage
	}
	switch {
	case c.Killed != "":
		return &JobError{Kind: SystemFailure, ExitCode: c.ExitCode, Call: what,
			Err: errors.Join(fmt.Errorf("timed out, sent %s: %w", c.Killed, context.DeadlineExceeded), c.Err)}
	case c.Err != nil:
		// A leaked pipe included: the runner would still be waiting.
		return &JobError{Kind: SystemFailure, ExitCode: c.ExitCode, Call: what, Err: c.Err}
	case c.ExitCode == 0:
		return nil
	case c.ExitCode == buildFailureExitCode:
		return r.buildFailure(what)
	case c.ExitCode == systemFailureExitCode:
		return &JobError{Kind: SystemFailure, ExitCode: c.ExitCode, Call: what, Err: fmt.Errorf("exit status %d", c.ExitCode)}
	}
	return &JobError{Kind: SystemFailure, ExitCode: c.ExitCode, Call: what,
		Err: fmt.Errorf("unknown Custom executor executable exit code %d (signal %q)", c.ExitCode, c.Signal)}
}

func (r *run) buildFailure(what string) error {
	f, err := os.Open(filepath.Join(r.tempDir, "build_exit_code"))
	if err != nil {
		return &JobError{Kind: ScriptFailure, ExitCode: buildFailureExitCode, Call: what, Err: errors.New("exit status 1")}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	code, err := strconv.Atoi(sc.Text())
	if err != nil {
		return &JobError{Kind: SystemFailure, ExitCode: systemFailureExitCode, Call: what,
			Err: fmt.Errorf("bad build exit code file: %q", sc.Text())}
	}
	return &JobError{Kind: ScriptFailure, ExitCode: code, Call: what, Err: fmt.Errorf("exit status %d", code)}
}
