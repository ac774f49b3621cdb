package gitlab

import (
	"context"
	"io"

	"github.com/stintdev/stint/spec"
)

// Engine is what the driver needs from stint's engine: a handful of calls
// over one job's container. The CLI implements it over the runner's Host;
// tests use a fake.
//
// # Lifecycle
//
// A job's container lives from `prepare` to `cleanup`, across separate
// processes: no stint process holds it between two runner calls.
//
//  1. Image lookups (Remotes, HasImage) run first, in `prepare`, to turn the
//     job's image into a stint reference the administrator allows. They
//     never create anything.
//  2. Prepare makes job.Name's container from job.Image and starts it, with
//     job.BuildsDir and job.CacheDir as directories that outlive a stage,
//     then starts each of job.Services beside it (reachable by its Alias
//     from the job's container). Before it returns every process it started
//     for the job must have let go of the caller's stdout and stderr: the
//     runner waits for end of file on both. A Prepare that fails may leave
//     parts behind; the driver calls Cleanup next, always.
//  3. Exec copies a script into the running container and runs it, once per
//     stage, with exactly the environment in Exec.Env (nothing of the
//     caller's own). It returns the script's exit status; err is only for
//     stint's own failures (the script could not be started, the container
//     is gone), never for a script that failed. It returns soon after the
//     script's process exits, even when the script left a process running
//     in the background that still holds its output. Cancelling ctx kills
//     the script and what it started, but not the container: later stages
//     (after_script) still run in it.
//  4. Cleanup removes everything Prepare made for the job: the services,
//     the container, its volume, its network. outcome says how the job
//     ended, so that cache volumes may keep what it wrote (each cache's
//     Commit policy decides; an abandoned job never commits). Cleanup of a job that is partly or not at all
//     there is not an error: it runs after a failed Prepare, twice when a
//     runner retries, and from `stint gc` after a runner died.
type Engine interface {
	// Remotes names the image remotes configured in stint.
	Remotes(ctx context.Context) ([]string, error)
	// HasImage reports whether ref (an alias or fingerprint) is in the
	// local image store.
	HasImage(ctx context.Context, ref string) (bool, error)
	Prepare(ctx context.Context, job JobContainer) error
	Exec(ctx context.Context, name string, x Exec) (exitCode int, err error)
	Cleanup(ctx context.Context, job JobContainer, outcome Outcome) error
}

// Outcome is how a job ended, as Cleanup is told. With each cache's Commit
// policy it decides whether the job's copy of the cache is kept.
type Outcome int

const (
	// OutcomeAbandoned: nobody saw the job end — its runner is gone (stint
	// gc) or a retried prepare clears an earlier attempt. No cache commits,
	// whatever the policy: the job may have stopped mid-write.
	OutcomeAbandoned Outcome = iota
	// OutcomeFailed: the runner's cleanup after a job that did not pass.
	OutcomeFailed
	// OutcomePassed: the runner's cleanup after a job that passed.
	OutcomePassed
)

func (o Outcome) String() string {
	switch o {
	case OutcomePassed:
		return "passed"
	case OutcomeFailed:
		return "failed"
	}
	return "abandoned"
}

// JobContainer is everything the engine needs to make one job's container.
// The driver keeps it in the job's Record, so `run`, `cleanup` and `stint gc`
// hand the engine the same value `prepare` did.
type JobContainer struct {
	Name      string        `json:"name"`     // the container's name (see ContainerName)
	Image     string        `json:"image"`    // a stint image reference (see ChooseImage)
	Hostname  string        `json:"hostname"` // the container's hostname
	BuildsDir string        `json:"builds_dir"`
	CacheDir  string        `json:"cache_dir"`
	Limits    spec.Limits   `json:"limits"`
	Network   string        `json:"network"` // none | host | bridge
	Caches    []CacheVolume `json:"caches,omitempty"`
	Services  []Service     `json:"services,omitempty"`
}

// CacheVolume is a stint cache volume mounted into the job's container.
type CacheVolume struct {
	Name   string `json:"name"`   // the volume's name in stint's cache store
	Target string `json:"target"` // where the job sees it
	Commit string `json:"commit"` // on_success | always | never
}

// Exec is one stage's script run in the job's container.
type Exec struct {
	// Path is where the script is written inside the container (mode 0700),
	// Script its content, copied from the runner's file.
	Path   string
	Script []byte
	// Argv runs it: the interpreter named by the script's #! line, then Path.
	Argv   []string
	Env    []string // the whole environment of the script's process
	Dir    string   // working directory inside the container
	Stdout io.Writer
	Stderr io.Writer
}
