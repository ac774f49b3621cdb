package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Subcommands of `stint gitlab`.
const (
	SubConfig  = "config"
	SubPrepare = "prepare"
	SubRun     = "run"
	SubCleanup = "cleanup"
)

// ErrUsage is a `stint gitlab` command line the driver can't follow.
var ErrUsage = errors.New("usage: stint gitlab config|prepare|run SCRIPT STAGE|cleanup --config FILE")

// Invocation is one `stint gitlab SUB` process: everything the CLI hands
// over, so that cmd/stint only parses flags and calls Main.
type Invocation struct {
	Sub        string   // config | prepare | run | cleanup
	Args       []string // run: SCRIPT STAGE
	ConfigFile string   // --config
	Environ    []string // os.Environ()
	Stdout     io.Writer
	Stderr     io.Writer
	Version    string
	Proc       ProcFS // HostProc unless testing
	// RecordsDir is where the root at root keeps its GitLab job records
	// (stint's runner.Layout.GitLabJobs).
	RecordsDir func(root string) string
	// Open opens the engine over cfg.Root (prepare, run, cleanup only);
	// close releases it.
	Open func(ctx context.Context, cfg *Config) (eng Engine, close func() error, err error)
}

// Main runs the invocation and returns the process's exit status, as the
// runner reads it: 0, BUILD_FAILURE_EXIT_CODE or SYSTEM_FAILURE_EXIT_CODE
// (see Call.Finish). Every error is printed to Stderr, which the runner
// shows in the job log.
func (inv Invocation) Main(ctx context.Context) int {
	call, err := ParseCall(inv.Environ)
	if err == nil {
		err = inv.dispatch(ctx, call)
	}
	if err != nil {
		var bf *BuildFailure
		if !errors.As(err, &bf) {
			fmt.Fprintf(inv.Stderr, "stint gitlab %s: %v\n", inv.Sub, err)
		}
	}
	return call.Finish(err, func(w error) { fmt.Fprintf(inv.Stderr, "stint gitlab %s: %v\n", inv.Sub, w) })
}

func (inv Invocation) dispatch(ctx context.Context, call Call) error {
	switch {
	case inv.Sub == SubRun && len(inv.Args) != 2,
		inv.Sub != SubRun && len(inv.Args) != 0,
		inv.ConfigFile == "", inv.RecordsDir == nil:
		return ErrUsage
	}
	cfg, err := LoadConfig(inv.ConfigFile)
	if err != nil {
		return err
	}
	proc := inv.Proc
	if proc == "" {
		proc = HostProc
	}
	d := &Driver{Config: cfg, Records: Records{Dir: inv.RecordsDir(cfg.Root)}, Proc: proc, Version: inv.Version, Log: inv.Stdout}
	if inv.Sub == SubConfig {
		out, err := d.ConfigOutput(call)
		if err != nil {
			return err
		}
		return json.NewEncoder(inv.Stdout).Encode(out)
	}
	if inv.Sub != SubPrepare && inv.Sub != SubCleanup && inv.Sub != SubRun {
		return ErrUsage
	}
	eng, closeEng, err := inv.Open(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open stint at %s: %w", cfg.Root, err)
	}
	defer func() { _ = closeEng() }()
	d.Engine = eng
	switch inv.Sub {
	case SubPrepare:
		return d.Prepare(ctx, call)
	case SubRun:
		return d.Run(ctx, call, inv.Args[0], Stage(inv.Args[1]), inv.Stdout, inv.Stderr)
	default:
		// The runner's cleanup timeout cancels ctx (SIGTERM): Cleanup keeps
		// the record for gc when it can't finish.
		return d.Cleanup(ctx, call)
	}
}
