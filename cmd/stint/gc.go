package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stintdev/stint/gitlab"
	"github.com/stintdev/stint/runner"
)

// GcCmd removes what dead stint processes left behind.
type GcCmd struct {
	Kept     bool   `help:"Also remove containers kept by --keep-on-failure."`
	All      bool   `help:"Everything gc may remove (today: the same as --kept)."`
	KeepLogs string `default:"7d" help:"Remove job logs last written longer ago than this (7d, 36h, 90m; 0: every finished job's), except those of running and kept jobs."`
}

// Run removes orphans (and kept containers when asked).
func (c *GcCmd) Run(g *Globals) error {
	keep, err := parseAge(c.KeepLogs)
	if err != nil {
		return withCode(ExitUsage, fmt.Errorf("stint gc: --keep-logs %q: %w", c.KeepLogs, err))
	}
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
	// After the records' gc: a dead job's clone no longer holds its golden.
	repaired, repairErr := h.RepairGoldens(ctx)
	res.Removed = append(res.Removed, repaired...)
	if repairErr != nil {
		res.Errors = append(res.Errors, repairErr.Error())
	}
	if sweepErr != nil {
		res.Errors = append(res.Errors, sweepErr.Error())
	}
	// After the records' gc: a dead job's log is no longer held by its record.
	logs, logErr := h.PruneLogs(time.Now().Add(-keep))
	if logErr != nil {
		res.Errors = append(res.Errors, logErr.Error())
	}
	if g.JSON {
		out := struct {
			runner.GCResult
			Logs []string `json:"logs_removed,omitempty"`
		}{res, logs}
		if err := writeJSON(g.Stdout, out); err != nil {
			return err
		}
	} else {
		for _, n := range res.Removed {
			fmt.Fprintf(g.Stdout, "removed %s\n", n)
		}
		if len(logs) > 0 {
			fmt.Fprintf(g.Stdout, "removed %s older than %s\n", plural(len(logs), "job log"), c.KeepLogs)
		}
		if len(res.Removed) == 0 && len(logs) == 0 {
			fmt.Fprintln(g.Stdout, "nothing to remove")
		}
	}
	if len(res.Errors) > 0 {
		return withCode(ExitHost, errors.New("stint gc: "+strings.Join(res.Errors, "\n  ")))
	}
	return nil
}

// parseAge reads an age as a Go duration (36h, 90m) or in days (7d, 1.5d);
// "0" is no age at all.
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 || n > 1e5 {
			return 0, errors.New("want a duration such as 7d, 36h or 90m")
		}
		d = time.Duration(n * 24 * float64(time.Hour))
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < 0 {
			return 0, errors.New("want a duration such as 7d, 36h or 90m")
		}
	}
	return d, nil
}
