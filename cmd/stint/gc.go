package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/stintdev/stint/gitlab"
	"github.com/stintdev/stint/runner"
)

// GcCmd removes what dead stint processes left behind.
type GcCmd struct {
	Kept bool `help:"Also remove containers kept by --keep-on-failure."`
	All  bool `help:"Everything gc may remove (today: the same as --kept)."`
}

// Run removes orphans (and kept containers when asked).
func (c *GcCmd) Run(g *Globals) error {
	ctx := context.Background()
	h, err := g.openHost(ctx, runner.Options{Containers: true})
	if err != nil {
		return err
	}
	defer h.Close()
	// GitLab jobs first: the runner that prepared one is gone (their
	// long-lived records are no orphans to the runner's gc).
	swept, sweepErr := gitlab.SweepJobs(ctx, &hostEngine{h: h}, gitlab.Records{Dir: h.Layout().GitLabJobs()}, gitlab.HostProc)
	res, err := h.GC(ctx, runner.GCOptions{Kept: c.Kept || c.All})
	if err != nil {
		return withCode(ExitHost, err)
	}
	res.Removed = append(swept, res.Removed...)
	if sweepErr != nil {
		res.Errors = append(res.Errors, sweepErr.Error())
	}
	if g.JSON {
		if err := writeJSON(g.Stdout, res); err != nil {
			return err
		}
	} else {
		for _, n := range res.Removed {
			fmt.Fprintf(g.Stdout, "removed %s\n", n)
		}
		if len(res.Removed) == 0 {
			fmt.Fprintln(g.Stdout, "nothing to remove")
		}
	}
	if len(res.Errors) > 0 {
		return withCode(ExitHost, errors.New("stint gc: "+strings.Join(res.Errors, "\n  ")))
	}
	return nil
}
