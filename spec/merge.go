package spec

import (
	"sort"
	"strings"
)

// merge folds layers in order (a job's profiles, then the job): scalars, the
// last one set wins; env, limits and raw merge key by key; mounts and
// artifacts append (a later mount with the same target replaces the earlier
// one when the job is resolved, see resolver.mounts).
func merge(ls []*layer) *layer {
	nEnv, nRaw := 0, 0
	for _, l := range ls {
		nEnv, nRaw = max(nEnv, len(l.env)), max(nRaw, len(l.raw))
	}
	out := &layer{env: make(map[string]sv, nEnv), raw: make(map[string]sv, nRaw), written: map[string]bool{}}
	for _, l := range ls {
		for k := range l.written {
			out.written[k] = true
		}
		out.kind, out.name, out.f, out.At = l.kind, l.name, l.f, l.At
		if l.image != nil {
			out.image = l.image
		}
		if l.profiles != nil {
			out.profiles = l.profiles
		}
		for k, v := range l.env {
			out.env[k] = v
		}
		for k, v := range l.raw {
			out.raw[k] = v
		}
		setIf(&out.workdir, l.workdir)
		setIf(&out.user, l.user)
		setIf(&out.timeout, l.timeout)
		setIf(&out.shell, l.shell)
		setIf(&out.network, l.network)
		setIf(&out.privileged, l.privileged)
		setIf(&out.keepOnFailure, l.keepOnFailure)
		setIf(&out.state, l.state)
		setIf(&out.hostUser, l.hostUser)
		setIf(&out.home, l.home)
		setIf(&out.sshAgent, l.sshAgent)
		setIf(&out.target, l.target)
		setIf(&out.limits.memory, l.limits.memory)
		setIf(&out.limits.cpus, l.limits.cpus)
		setIf(&out.limits.pids, l.limits.pids)
		if l.runAt != nil {
			out.run, out.runAt = l.run, l.runAt
		}
		if l.commandAt != nil {
			out.command, out.commandAt = l.command, l.commandAt
		}
		if l.matrix != nil {
			out.matrix = l.matrix
		}
		if l.ports != nil {
			out.ports = l.ports
		}
		if l.services != nil {
			out.services = l.services
		}
		out.mounts = append(out.mounts, l.mounts...)
		out.artifacts = append(out.artifacts, l.artifacts...)
	}
	return out
}

// atOf is where an optional value was written, or nil.
func atOf[T any](v *val[T]) *at {
	if v == nil {
		return nil
	}
	return &v.At
}

func setIf[T any](dst **T, v *T) {
	if v != nil {
		*dst = v
	}
}

// layers returns the profiles of l (in order) and l itself, reporting
// undefined profiles.
func (lo *loader) layers(l *layer) []*layer {
	var out []*layer
	names := make([]string, 0, len(lo.profiles))
	for n := range lo.profiles {
		names = append(names, n)
	}
	for _, p := range l.profiles {
		prof, ok := lo.profiles[p.V]
		if !ok {
			hint := suggest(p.V, names)
			if hint == "" && len(names) > 0 {
				sort.Strings(names)
				hint = "defined profiles: " + strings.Join(names, ", ")
			}
			lo.ps.addf(p.At, hint, "undefined profile %q", p.V)
			continue
		}
		out = append(out, prof)
	}
	return append(out, l)
}

// variant is one point of a job's matrix.
type variant struct {
	name string
	vars map[string]string
}

// variants expands a matrix: the cartesian product, keys sorted by name,
// values in the order written. No matrix: one variant named after the job.
func variants(base string, matrix []matrixKey) []variant {
	keys := append([]matrixKey(nil), matrix...)
	sort.Slice(keys, func(i, j int) bool { return keys[i].name < keys[j].name })
	out := []variant{{vars: map[string]string{}}}
	for _, k := range keys {
		if len(k.values) == 0 {
			continue // reported when decoded
		}
		var next []variant
		for _, v := range out {
			for _, val := range k.values {
				vars := make(map[string]string, len(v.vars)+1)
				for kk, vv := range v.vars {
					vars[kk] = vv
				}
				vars[k.name] = val.V
				next = append(next, variant{vars: vars})
			}
		}
		out = next
	}
	for i := range out {
		out[i].name = variantName(base, out[i].vars)
	}
	return out
}

// variantName is base[k1=v1,k2=v2] with keys sorted; base alone without a matrix.
func variantName(base string, vars map[string]string) string {
	if len(vars) == 0 {
		return base
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + vars[k]
	}
	return base + "[" + strings.Join(parts, ",") + "]"
}

// substitute replaces ${key} by its matrix value and $${ by a literal ${.
// It returns the names of references with no value.
func substitute(s string, vars map[string]string) (string, []string) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var undefined []string
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if strings.HasPrefix(s[i:], "${") {
			if j := strings.IndexByte(s[i+2:], '}'); j >= 0 {
				name := s[i+2 : i+2+j]
				if v, ok := vars[name]; ok {
					b.WriteString(v)
				} else {
					undefined = append(undefined, name)
					b.WriteString(s[i : i+3+j])
				}
				i += 3 + j
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String(), undefined
}
