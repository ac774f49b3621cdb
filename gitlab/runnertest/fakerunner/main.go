// Command fakerunner is gitlab-runner as the runnertest package plays it,
// in a process of its own, so that a test can see a runner die mid-job: it
// reads a runnertest.Request as JSON on stdin and writes a runnertest.Report
// as JSON on stdout (see runnertest.StartRunner).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/stintdev/stint/gitlab/runnertest"
)

func main() {
	var req runnertest.Request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "fakerunner: request:", err)
		os.Exit(2)
	}
	opts := req.Options
	if req.DieAt != "" {
		opts.BeforeStage = func(stage string) error {
			if stage == req.DieAt {
				go func() {
					time.Sleep(req.DieAfter)
					_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				}()
			}
			return nil
		}
	}
	res, err := runnertest.Run(context.Background(), req.Driver, req.Job, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakerunner:", err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res.Report()); err != nil {
		fmt.Fprintln(os.Stderr, "fakerunner: report:", err)
		os.Exit(2)
	}
}
