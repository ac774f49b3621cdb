package main

import (
	"errors"
	"fmt"

	"github.com/stintdev/stint/spec"
)

// checkRuntimeKeys refuses, before anything is made, spec keys the chosen
// runtime can't honour (exit 2, each at its file:line): `target` names a
// cluster member, so it needs --remote (local LXC has no cluster to place
// on, and running the job here anyway would hide the mistake); host_user
// maps the invoking user's files, which are not on a remote.
func checkRuntimeKeys(g *Globals, jobs []spec.Job, containers []spec.Container) error {
	var errs []error
	check := func(kind, name string, pos spec.Pos, target string, hostUser bool) {
		switch {
		case target != "" && g.Remote == "":
			errs = append(errs, fmt.Errorf("%s: %s.%s.target: target %q places it on a cluster member: it needs --remote (or STINT_REMOTE)", where(pos), kind, name, target))
		case hostUser && g.Remote != "":
			errs = append(errs, fmt.Errorf("%s: %s.%s.host_user: not supported on remote %s (the invoking user's files are on this host); run it locally", where(pos), kind, name, g.Remote))
		}
	}
	for _, j := range jobs {
		check("job", j.Name, j.Pos, j.Target, j.HostUser)
	}
	for _, c := range containers {
		check("container", c.Name, c.Pos, c.Target, c.HostUser)
	}
	return withCode(ExitUsage, errors.Join(errs...))
}

// where is pos as file:line:col.
func where(p spec.Pos) string {
	if p.Col > 0 {
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}
