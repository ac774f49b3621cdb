package gitlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// ScriptDir is where `run` writes each stage's script inside the container.
const ScriptDir = "/tmp/stint-gitlab"

// Driver is `stint gitlab`: one method per subcommand. The CLI reads the
// Call from its environment, builds a Driver from --config and the engine,
// calls one method and exits with call.Finish(err).
type Driver struct {
	Config  *Config
	Engine  Engine
	Records Records   // normally <root>/gitlab/jobs
	Proc    ProcFS    // HostProc unless testing
	Version string    // stint's version, for the job log
	Log     io.Writer // prepare's and cleanup's progress lines (the job log)
	Now     func() time.Time
}

func (d *Driver) logf(format string, args ...any) {
	if d.Log != nil {
		fmt.Fprintf(d.Log, format+"\n", args...)
	}
}

func (d *Driver) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// ConfigOutput is `config`: the runner's settings for this job. The
// container is named after the job's ids and is its own host, so the builds
// dir is never shared.
func (d *Driver) ConfigOutput(call Call) (*ConfigOutput, error) {
	name, err := ContainerName(call.Vars)
	if err != nil {
		return nil, err
	}
	out := &ConfigOutput{
		Driver:            &DriverInfo{Name: ptr(DriverName), Version: ptr(d.Version)},
		Hostname:          ptr(name),
		BuildsDir:         ptr(d.Config.BuildsDir),
		CacheDir:          ptr(d.Config.CacheDir),
		BuildsDirIsShared: ptr(false),
	}
	if d.Version == "" {
		out.Driver.Version = nil
	}
	if d.Config.Shell != "" {
		out.Shell = ptr(d.Config.Shell)
	}
	return out, nil
}

// Prepare is `prepare`: choose the job's image and its services' images,
// record the job with the runner process that owns it, then have the engine
// make and start everything. Jobs whose runner is gone are swept first, and
// so are the leftovers of an earlier attempt at this job.
func (d *Driver) Prepare(ctx context.Context, call Call) error {
	job, err := d.jobContainer(ctx, call)
	if err != nil {
		return err
	}
	runner, err := d.Proc.Runner(call.JobResponseFile)
	if err != nil {
		return fmt.Errorf("job %s: find the calling runner: %w", job.Name, err)
	}
	if _, err := d.Sweep(ctx); err != nil {
		d.logf("stint: sweeping jobs of runners that are gone: %v", err)
	}
	if old, err := d.Records.Read(job.Name); err == nil {
		d.logf("stint: removing what an earlier attempt left of %s", job.Name)
		if err := d.Engine.Cleanup(ctx, old.Job, OutcomeAbandoned); err != nil {
			return fmt.Errorf("job %s: remove an earlier attempt: %w", job.Name, err)
		}
	} else if !errors.Is(err, ErrNoRecord) {
		return err
	}
	// Journal first: whatever Prepare makes, cleanup and gc find it.
	rec := Record{Job: job, Runner: runner, Created: d.now().UTC()}
	if err := d.Records.Write(rec); err != nil {
		return err
	}
	d.logf("stint: preparing %s from image %s", job.Name, job.Image)
	for _, s := range job.Services {
		d.logf("stint: service %s from image %s as %s", s.Name, s.Image, s.Alias)
	}
	if err := d.Engine.Prepare(ctx, job); err != nil {
		return fmt.Errorf("prepare job %s: %w", job.Name, err)
	}
	return nil
}

// jobContainer works out the job's container from the call and the config.
func (d *Driver) jobContainer(ctx context.Context, call Call) (JobContainer, error) {
	name, err := ContainerName(call.Vars)
	if err != nil {
		return JobContainer{}, err
	}
	image, err := ChooseImage(ctx, d.Config, d.Engine, call.Vars[VarJobImage])
	if err != nil {
		return JobContainer{}, fmt.Errorf("job %s: %w", name, err)
	}
	svcs, err := ParseServices(call.Vars[VarJobServices])
	if err != nil {
		return JobContainer{}, fmt.Errorf("job %s: %w", name, err)
	}
	for i := range svcs {
		if svcs[i].Image, err = ChooseImage(ctx, d.Config, d.Engine, svcs[i].Name); err != nil {
			return JobContainer{}, fmt.Errorf("job %s: service %s: %w", name, svcs[i].Alias, err)
		}
		svcs[i].Container = serviceName(name, i)
	}
	return JobContainer{
		Name:      name,
		Image:     image,
		Hostname:  name,
		BuildsDir: d.Config.BuildsDir,
		CacheDir:  d.Config.CacheDir,
		Limits:    d.Config.Profile.Limits,
		Network:   d.Config.Profile.Network,
		Caches:    d.caches(name, call.Vars),
		Services:  svcs,
	}, nil
}

// caches is the cache volume the policy gives the job, mounted at CacheDir.
func (d *Driver) caches(name string, vars map[string]string) []CacheVolume {
	// name is gitlab-<instance>-...: the instance part keeps two GitLab
	// instances' project 1 apart.
	instance := strings.Join(strings.SplitN(name, "-", 3)[:2], "-")
	var vol string
	switch d.Config.Cache.Scope {
	case CacheNone:
		return nil
	case CacheRunner:
		vol = fmt.Sprintf("%s-r%s", instance, vars[VarRunnerID])
	default:
		vol = fmt.Sprintf("%s-p%s", instance, vars[VarProjectID])
	}
	return []CacheVolume{{Name: vol, Target: d.Config.CacheDir, Commit: d.Config.Cache.Commit}}
}

// Run is `run SCRIPT STAGE`: copy the runner's script into the job's
// container and run it there with ContainerEnv only. A script that fails is
// a *BuildFailure; anything else that goes wrong is stint's own failure.
func (d *Driver) Run(ctx context.Context, call Call, script string, stage Stage, stdout, stderr io.Writer) error {
	name, err := ContainerName(call.Vars)
	if err != nil {
		return err
	}
	_, err = d.Records.Read(name)
	if errors.Is(err, ErrNoRecord) {
		return fmt.Errorf("run %s in %s: %w", stage, name, ErrNotPrepared)
	} else if err != nil {
		return err
	}
	body, err := os.ReadFile(script)
	if err != nil {
		return fmt.Errorf("read the runner's script for %s: %w", stage, err)
	}
	target := path.Join(ScriptDir, string(stage))
	code, err := d.Engine.Exec(ctx, name, Exec{
		Path: target, Script: body, Argv: append(Interpreter(body), target),
		Env: ContainerEnv(d.Config.Profile.Env), Dir: "/", Stdout: writerOnly{stdout}, Stderr: writerOnly{stderr},
	})
	if err != nil {
		err = fmt.Errorf("run %s in %s: %w", stage, name, err)
	}
	d.noteOutcome(name, stage, code, err)
	if err != nil {
		return err
	}
	if code != 0 {
		return &BuildFailure{Stage: stage, Code: code}
	}
	return nil
}

// writerOnly hides that a writer is an *os.File (the runner's pipe), so
// that an engine copies into it rather than handing the descriptor to the
// container: a process the job leaves in the background must not keep the
// runner's pipe open, or the runner waits for its end of file forever.
type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }

// noteOutcome records what the stage says about the job's status, which
// decides at cleanup whether the caches commit. A record gone meanwhile
// (gc removed the job of a runner that died during this call) stays gone.
func (d *Driver) noteOutcome(name string, stage Stage, code int, err error) {
	failed := (err != nil || code != 0) && stage.failsJob() ||
		stage == StageArchiveCacheOnFailure || stage == StageUploadArtifactsOnFailure // the runner says the job failed
	passed := !failed && stage.User() && err == nil && code == 0
	if !failed && !passed {
		return
	}
	werr := d.Records.Update(name, func(rec *Record) {
		rec.Failed = rec.Failed || failed
		rec.Passed = rec.Passed || passed
	})
	if werr != nil && !errors.Is(werr, ErrNoRecord) {
		d.logf("stint: %v", werr)
	}
}

// Cleanup is `cleanup`: remove everything of the job's and its record. The
// caches commit only when the job passed. The record first loses its runner,
// so that a cleanup that fails, or that the runner's cleanup timeout kills,
// leaves the job to the next prepare or `stint gc`; sweeps wait meanwhile.
func (d *Driver) Cleanup(ctx context.Context, call Call) error {
	name, err := ContainerName(call.Vars)
	if err != nil {
		return err
	}
	unlock, ok, err := d.Records.sweepLock(0)
	if err != nil || !ok {
		return err // !ok: no records dir, nothing was ever prepared here
	}
	defer unlock()
	var rec Record
	err = d.Records.Update(name, func(r *Record) { r.Runner = Process{}; rec = *r })
	if errors.Is(err, ErrNoRecord) {
		return nil // config or prepare failed before anything was made
	} else if err != nil {
		return err
	}
	outcome := OutcomeFailed
	if rec.Succeeded() {
		outcome = OutcomePassed
	}
	if err := d.Engine.Cleanup(ctx, rec.Job, outcome); err != nil {
		return fmt.Errorf("clean up job %s (left for stint gc): %w", name, err)
	}
	return d.Records.Remove(name)
}

// Sweep removes every job whose runner is gone (see Alive): what `stint gc`
// and each prepare call. It returns the names it removed.
func (d *Driver) Sweep(ctx context.Context) ([]string, error) {
	return SweepJobs(ctx, d.Engine, d.Records, d.Proc)
}

// SweepJobs is Driver.Sweep without a driver config, for `stint gc`. Only
// one process sweeps a records directory at a time; another that finds it
// busy returns at once, having removed nothing.
func SweepJobs(ctx context.Context, eng Engine, rs Records, proc ProcFS) ([]string, error) {
	if _, err := os.Stat(rs.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no GitLab job ever ran here: make nothing
	}
	unlock, ok, err := rs.trySweepLock()
	if err != nil || !ok {
		return nil, err
	}
	defer unlock()
	recs, err := rs.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, rec := range recs {
		if proc.Alive(rec) {
			continue
		}
		if err := eng.Cleanup(ctx, rec.Job, OutcomeAbandoned); err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", rec.Job.Name, err))
			continue
		}
		if err := rs.Remove(rec.Job.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, rec.Job.Name)
	}
	return removed, errors.Join(errs...)
}

// Interpreter is the command a script's #! line names, without the script:
// "#!/usr/bin/env sh" gives ["sh"] (found through PATH in the container),
// "#!/bin/bash -e" gives ["/bin/bash", "-e"]; no #! line gives ["/bin/sh"].
func Interpreter(script []byte) []string {
	line, _, _ := bytes.Cut(script, []byte("\n"))
	rest, ok := bytes.CutPrefix(line, []byte("#!"))
	if !ok {
		return []string{"/bin/sh"}
	}
	f := strings.Fields(string(rest))
	switch {
	case len(f) == 0:
		return []string{"/bin/sh"}
	case path.Base(f[0]) == "env" && len(f) > 2 && f[1] == "-S":
		return f[2:]
	case path.Base(f[0]) == "env" && len(f) > 1:
		return f[1:]
	}
	return f
}
