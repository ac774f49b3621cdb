package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/stintdev/stint/runner"
)

// PsCmd lists the containers stint owns.
type PsCmd struct{}

// psRow is one line of `stint ps`.
type psRow struct {
	Name    string    `json:"name"`
	Kind    string    `json:"kind"`
	Set     string    `json:"set,omitempty"`
	Job     string    `json:"job,omitempty"`
	State   string    `json:"state"`
	Phase   string    `json:"phase,omitempty"`
	Kept    bool      `json:"kept,omitempty"`
	Owner   int       `json:"owner,omitempty"`
	Created time.Time `json:"created"`
}

// Run prints the state records with their containers' states.
func (PsCmd) Run(g *Globals) error {
	ctx := context.Background()
	h, err := g.openHost(ctx, runner.Options{})
	if err != nil {
		return err
	}
	defer h.Close()
	entries, err := h.Ps(ctx)
	if err != nil {
		return hostCode(err)
	}
	rows := []psRow{}
	for _, r := range entries {
		rows = append(rows, psRow{Name: r.Name, Kind: r.Kind, Set: r.Set, Job: r.Job, State: string(r.State), Phase: string(r.Phase), Kept: r.Kept, Owner: r.Owner, Created: r.Created})
	}
	if g.JSON {
		return writeJSON(g.Stdout, rows)
	}
	tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSET\tJOB\tSTATE\tPHASE\tAGE")
	for _, r := range rows {
		phase := r.Phase
		if r.Kept {
			phase = "kept"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Kind, dash(r.Set), dash(r.Job), r.State, phase, age(r.Created, time.Now()))
	}
	return tw.Flush()
}

// age is how long ago created was, to the second; "-" when unknown: a
// corrupt record has no creation time (not 2562047h47m16s), a garbled one
// one before stint or in the future (a clock a little behind the record's
// writer is 0s).
func age(created, now time.Time) string {
	d := now.Sub(created)
	if created.Before(ageEpoch) || d < -time.Minute {
		return "-"
	}
	return max(d, 0).Round(time.Second).String()
}

// ageEpoch is before any record stint wrote.
var ageEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// dash stands in for an empty column, so columns stay readable.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
