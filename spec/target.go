package spec

import (
	"strings"
)

// target = "MEMBER" on jobs and containers (issue 13, docs/remote.md):
// the cluster member of a remote (`stint --remote NAME`) that runs it. The
// spec only checks that it can be a member's name; which members exist is
// the remote's to say. Without --remote there is no cluster, and the CLI
// refuses a selected job or container that names one (exit 2).

// memberName is a cluster member's name as LXD and Incus accept one (a
// host name's label rules, dots allowed).
var memberName = lazyRE(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$`)

// target decodes a target key.
func (d *decoder) target(v any, p string) *sv {
	s, ok := d.str(v, p)
	if !ok {
		return nil
	}
	if strings.TrimSpace(s.V) == "" {
		d.problem(p, "omit target to let the cluster place it", "target is empty")
		return nil
	}
	if !strings.Contains(s.V, "${") && !memberName.MatchString(s.V) {
		d.problem(p, "", "target %q is not a cluster member name (letters, digits, '-' and '.')", s.V)
		return nil
	}
	return &s
}

// target substitutes a decoded target (a matrix key may choose the member)
// and checks the result; "" when there is none.
func (r *resolver) target(s *sv) string {
	if s == nil {
		return ""
	}
	v, ok := r.sub(*s)
	if ok && !memberName.MatchString(v) {
		r.ps.addf(s.At, "", "target %q is not a cluster member name (letters, digits, '-' and '.')", v)
	}
	return v
}
