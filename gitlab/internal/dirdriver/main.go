// Command dirdriver is the gitlab package's driver over an engine whose
// "containers" are directories and whose scripts run on the host: the
// driver's whole logic (Invocation.Main, job records, the runner's
// identity, sweeping) run by runnertest as gitlab-runner would, without
// LXC. Usage: dirdriver config|prepare|run SCRIPT STAGE|cleanup|gc --config FILE.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/stintdev/stint/gitlab"
	"github.com/stintdev/stint/gitlab/internal/direngine"
)

func main() {
	// As in the runner's config.toml: SUB --config FILE, then for run the
	// runner's SCRIPT STAGE.
	if len(os.Args) < 4 || os.Args[2] != "--config" {
		fmt.Fprintln(os.Stderr, gitlab.ErrUsage)
		os.Exit(2)
	}
	sub, cfgFile, args := os.Args[1], os.Args[3], os.Args[4:]
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if sub == "gc" {
		os.Exit(gc(ctx, cfgFile))
	}
	inv := gitlab.Invocation{Sub: sub, Args: args, ConfigFile: cfgFile, Environ: os.Environ(),
		Stdout: os.Stdout, Stderr: os.Stderr, Version: "test", RecordsDir: recordsDir,
		Open: func(_ context.Context, cfg *gitlab.Config) (gitlab.Engine, func() error, error) {
			return &direngine.Engine{Root: cfg.Root}, func() error { return nil }, nil
		}}
	os.Exit(inv.Main(ctx))
}

func gc(ctx context.Context, cfgFile string) int {
	cfg, err := gitlab.LoadConfig(cfgFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	removed, err := gitlab.SweepJobs(ctx, &direngine.Engine{Root: cfg.Root}, gitlab.Records{Dir: recordsDir(cfg.Root)}, gitlab.HostProc)
	for _, n := range removed {
		fmt.Println("removed", n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	return 0
}

// recordsDir is where the root keeps job records, as stint's
// runner.Layout.GitLabJobs spells it (this driver is a test's: it does not
// import the runner).
func recordsDir(root string) string { return filepath.Join(root, "gitlab", "jobs") }
