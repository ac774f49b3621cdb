package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/stintdev/stint/gitlab"
	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/remote"
	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/reconcile"
	"github.com/stintdev/stint/spec"
)

// GitlabCmd is the GitLab Runner custom executor driver (docs/gitlab.md).
type GitlabCmd struct {
	Config  gitlabConfigCmd  `cmd:"" help:"Print the JSON config the runner reads."`
	Prepare gitlabPrepareCmd `cmd:"" help:"Make the job's container."`
	Run     gitlabRunCmd     `cmd:"" help:"Run one stage's script in the job's container."`
	Cleanup gitlabCleanupCmd `cmd:"" help:"Remove everything of the job's."`
}

type gitlabConfigCmd struct {
	File string `name:"config" required:"" help:"The driver config file." type:"path"`
}

type gitlabPrepareCmd gitlabConfigCmd

type gitlabCleanupCmd gitlabConfigCmd

type gitlabRunCmd struct {
	File   string `name:"config" required:"" help:"The driver config file." type:"path"`
	Script string `arg:"" help:"The runner's script."`
	Stage  string `arg:"" help:"The runner's stage."`
}

// Run implements config.
func (c *gitlabConfigCmd) Run(g *Globals) error { return gitlabMain(g, gitlab.SubConfig, c.File, nil) }

// Run implements prepare.
func (c *gitlabPrepareCmd) Run(g *Globals) error {
	return gitlabMain(g, gitlab.SubPrepare, c.File, nil)
}

// Run implements cleanup.
func (c *gitlabCleanupCmd) Run(g *Globals) error {
	return gitlabMain(g, gitlab.SubCleanup, c.File, nil)
}

// Run implements run.
func (c *gitlabRunCmd) Run(g *Globals) error {
	return gitlabMain(g, gitlab.SubRun, c.File, []string{c.Script, c.Stage})
}

// gitlabMain runs one driver call; its exit status is the runner's code.
func gitlabMain(g *Globals, sub, file string, args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	inv := gitlab.Invocation{Sub: sub, Args: args, ConfigFile: file, Environ: os.Environ(),
		Stdout: g.Stdout, Stderr: g.Stderr, Version: version,
		RecordsDir: func(root string) string { return runner.Layout{Root: root}.GitLabJobs() },
		Open: func(ctx context.Context, cfg *gitlab.Config) (gitlab.Engine, func() error, error) {
			h, err := runner.Open(ctx, cfg.Root, runner.Options{Containers: true})
			if err != nil {
				return nil, nil, err
			}
			return &hostEngine{h: h}, h.Close, nil
		}}
	if code := inv.Main(ctx); code != 0 {
		return withCode(code, errors.New(""))
	}
	return nil
}

// gitlabSet is the spec set GitLab jobs' containers belong to.
const gitlabSet = "gitlab"

// hostEngine is gitlab.Engine over the Host: a job's container is a
// long-lived container of set "gitlab" (its record outlives the calls; the
// runner's gc leaves long-lived records to gitlab.SweepJobs).
type hostEngine struct{ h *runner.Host }

// Remotes names the image remotes (simplestreams and oci) of the root: the
// ones added and the presets, so that CI_JOB_IMAGE = "REMOTE:ALIAS" is
// pulled on first use. A root where no remote was ever added has only the
// presets (and no remotes directory is made for asking).
func (e *hostEngine) Remotes(context.Context) ([]string, error) {
	rs := remote.Presets
	root := e.h.Layout().Root
	if _, err := os.Stat(filepath.Join(root, "remotes")); err == nil {
		st, err := remote.Open(root)
		if err != nil {
			return nil, err
		}
		if rs, err = st.List(); err != nil {
			return nil, err
		}
	}
	var names []string
	for _, r := range rs {
		if r.Protocol == remote.ProtocolSimplestreams || r.Protocol == remote.ProtocolOCI {
			names = append(names, r.Name)
		}
	}
	return names, nil
}

func (e *hostEngine) HasImage(_ context.Context, ref string) (bool, error) {
	s, err := e.h.Images()
	if err != nil {
		return false, err
	}
	_, err = s.Resolve(ref)
	if errors.Is(err, images.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Prepare makes the job's services (each a long-lived container of the
// set, named by its alias on the job's private bridge), then the job's
// container on that bridge (docs/gitlab.md "Services").
func (e *hostEngine) Prepare(ctx context.Context, job gitlab.JobContainer) error {
	ll, err := e.h.Containers(ctx, nil)
	if err != nil {
		return err
	}
	network, mounts := spec.Network{Mode: job.Network}, []spec.Mount(nil)
	if len(job.Services) > 0 {
		for _, s := range job.Services {
			c := spec.Container{Name: s.Container, Hostname: s.Alias, Image: s.Image, State: spec.StateRunning,
				Command: append(slices.Clone(s.Entrypoint), s.Command...), Env: s.Variables,
				Network: runner.ServiceNetwork(job.Name, job.Network)}
			if err := ll.Create(ctx, gitlabSet, c, "gitlab"); err != nil {
				return fmt.Errorf("service %s: %w", s.Alias, err)
			}
			if err := ll.Start(ctx, gitlabSet, s.Container); err != nil {
				return fmt.Errorf("service %s: %w", s.Alias, err)
			}
		}
		if network, mounts, err = e.h.ServicesNetwork(ctx, job.Name, job.Network); err != nil {
			return err
		}
	}
	// Each cache volume is the job's own copy-on-write copy; Cleanup
	// decides whether it replaces the cache (docs/gitlab.md "Caches").
	for _, cv := range job.Caches {
		mounts = append(mounts, spec.Mount{Type: spec.MountCache, Name: cv.Name, Target: cv.Target, Commit: cv.Commit})
	}
	c := spec.Container{Name: job.Name, Image: job.Image, State: spec.StateRunning,
		Command: []string{"/bin/sh", "-c", "while :; do sleep 3600; done"},
		Limits:  spec.Limits{Memory: job.Limits.Memory, CPUs: job.Limits.CPUs, Pids: job.Limits.Pids},
		Network: network, Mounts: mounts}
	if err := ll.Create(ctx, gitlabSet, c, "gitlab"); err != nil {
		return err
	}
	return ll.Start(ctx, gitlabSet, job.Name)
}

func (e *hostEngine) Exec(ctx context.Context, name string, x gitlab.Exec) (int, error) {
	ll, err := e.h.Containers(ctx, nil)
	if err != nil {
		return -1, err
	}
	rt, rtName := ll.Runner.Runtime, reconcile.RuntimeName(gitlabSet, name)
	put := container.ExecOptions{Argv: []string{"/bin/sh", "-c", `mkdir -p "${0%/*}" && cat > "$0" && chmod 700 "$0"`, x.Path},
		Env: x.Env, Stdin: bytes.NewReader(x.Script)}
	if st, err := rt.Exec(ctx, rtName, put); err != nil || st.Code != 0 {
		return -1, fmt.Errorf("copy the script into %s: %v (status %d)", rtName, err, st.Code)
	}
	st, err := rt.Exec(ctx, rtName, container.ExecOptions{Argv: x.Argv, Env: x.Env, Cwd: x.Dir, Stdout: x.Stdout, Stderr: x.Stderr})
	if err != nil {
		return -1, err
	}
	return st.Code, nil
}

// Cleanup commits the job's caches as outcome and their policies say, then
// removes the job's container, its services, then their bridge; what is
// not there is no error.
func (e *hostEngine) Cleanup(ctx context.Context, job gitlab.JobContainer, outcome gitlab.Outcome) error {
	ll, err := e.h.Containers(ctx, nil)
	if err != nil {
		return err
	}
	var errs []error
	if len(job.Caches) > 0 && outcome != gitlab.OutcomeAbandoned {
		err := ll.CommitCaches(ctx, gitlabSet, job.Name, outcome == gitlab.OutcomePassed)
		if err != nil {
			errs = append(errs, fmt.Errorf("commit caches of job %s: %w", job.Name, err))
		}
	}
	errs = append(errs, ll.Destroy(ctx, gitlabSet, job.Name))
	for _, s := range job.Services {
		errs = append(errs, ll.Destroy(ctx, gitlabSet, s.Container))
	}
	if len(job.Services) > 0 {
		errs = append(errs, e.h.RemoveServicesNetwork(ctx, job.Name))
	}
	return errors.Join(errs...)
}
