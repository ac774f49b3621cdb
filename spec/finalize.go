package spec

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// merge folds layers in order (a job's profiles, then the job): scalars, the
// last one set wins; env, limits and raw merge key by key; mounts and
// artifacts append (a later mount with the same target replaces the earlier
// one when the job is resolved, see resolver.mounts).
func merge(ls []*layer) *layer {
	out := &layer{env: map[string]sv{}, raw: map[string]sv{}, written: map[string]bool{}}
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
		setIf(&out.network, l.network)
		setIf(&out.privileged, l.privileged)
		setIf(&out.keepOnFailure, l.keepOnFailure)
		setIf(&out.state, l.state)
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

// resolver turns merged values into the model, substituting matrix values
// and checking what can only be checked once merged and substituted.
type resolver struct {
	ps   *problems
	vars map[string]string
	keys []string // the job's matrix keys, for hints
	// profile: values are shown as written; a string holding ${...} is left
	// alone and checked in each job that uses the profile.
	profile bool
	// container: there is no matrix to define a key in.
	container bool
}

// sub substitutes s; ok is false when s cannot be checked further.
func (r *resolver) sub(s sv) (string, bool) {
	if r.profile {
		out, _ := substitute(s.V, nil)
		return out, !strings.Contains(s.V, "${")
	}
	out, undefined := substitute(s.V, r.vars)
	for _, u := range undefined {
		hint := suggest(u, r.keys)
		switch {
		case hint != "":
		case r.container:
			hint = fmt.Sprintf("containers have no matrix; write $${%s} for a literal ${%s}", u, u)
		default:
			hint = fmt.Sprintf("define it under matrix, or write $${%s} for a literal ${%s}", u, u)
		}
		r.ps.addf(s.At, hint, "${%s} is not a matrix key", u)
	}
	return out, len(undefined) == 0
}

func (r *resolver) subMap(m map[string]sv) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k], _ = r.sub(v)
	}
	return out
}

func (r *resolver) absolute(s sv, what string) string {
	v, ok := r.sub(s)
	if ok && !path.IsAbs(v) {
		r.ps.addf(s.At, "", "%s %q is not an absolute path", what, v)
	}
	return v
}

// mounts resolves mounts; a later mount with the same target replaces the earlier.
func (r *resolver) mounts(ms []mountv) []Mount {
	var out []Mount
	index := map[string]int{}
	for _, mv := range ms {
		m := Mount{Type: mv.typ.V, Readonly: mv.readonly}
		if mv.target == nil {
			r.ps.addf(mv.At, "", "mount without a target")
		} else {
			m.Target = path.Clean(r.absolute(*mv.target, "mount target"))
		}
		forbid := func(key string, where *at) {
			if where != nil {
				r.ps.addf(*where, "", "%s does not apply to a %s mount", key, m.Type)
			}
		}
		switch m.Type {
		case MountBind:
			forbid("name", atOf(mv.name))
			forbid("size", atOf(mv.size))
			if mv.source == nil {
				r.ps.addf(mv.At, `set source = "HOST PATH", or type = "cache" | "tmpfs"`, "bind mount without a source")
				break
			}
			src, ok := r.sub(*mv.source)
			m.Source = hostPath(mv.dir, src)
			if ok {
				if _, err := os.Stat(m.Source); err != nil {
					r.ps.addf(mv.source.At, "", "mount source %q does not exist (resolved to %s)", src, m.Source)
				}
			}
		case MountCache:
			forbid("source", atOf(mv.source))
			forbid("size", atOf(mv.size))
			if mv.name == nil {
				r.ps.addf(mv.At, `set name = "VOLUME"`, "cache mount without a name")
				break
			}
			name, ok := r.sub(*mv.name)
			if ok && !nameRE.MatchString(name) {
				r.ps.addf(mv.name.At, "letters, digits, - and _", "bad cache volume name %q", name)
			}
			m.Name = name
		case MountTmpfs:
			forbid("source", atOf(mv.source))
			forbid("name", atOf(mv.name))
			if mv.size != nil {
				m.Size = mv.size.V
			}
		}
		if i, dup := index[m.Target]; dup && mv.target != nil {
			out[i] = m
			continue
		}
		index[m.Target] = len(out)
		out = append(out, m)
	}
	return out
}

func (r *resolver) artifacts(as []artv) []Artifact {
	var out []Artifact
	for _, av := range as {
		a := Artifact{When: av.when.V}
		if av.path != nil {
			a.Path = r.absolute(*av.path, "artifact path")
		}
		if av.dest != nil {
			d, ok := r.sub(*av.dest)
			if ok && d != "" && !filepath.IsLocal(strings.TrimSuffix(d, "/")) {
				r.ps.addf(av.dest.At, "dest is relative to the job's artifact directory", "dest %q leaves the artifact directory", d)
			}
			a.Dest = d
		}
		out = append(out, a)
	}
	return out
}

// network resolves a network; nil means mode none.
func (r *resolver) network(n *netv) Network {
	if n == nil {
		return Network{Mode: "none"}
	}
	out := Network{Mode: n.mode.V}
	if n.bridge != nil {
		b, ok := r.sub(*n.bridge)
		out.Bridge = b
		switch {
		case out.Mode != "bridge":
			r.ps.addf(n.bridge.At, "", "bridge applies only to network mode \"bridge\", not %q", out.Mode)
		case ok && !bridgeRE.MatchString(b):
			r.ps.addf(n.bridge.At, "", "bad bridge name %q (an interface name: at most 15 characters)", b)
		}
	}
	if n.ipv4 != nil {
		a, ok := r.sub(*n.ipv4)
		out.IPv4 = a
		if out.Mode != "bridge" {
			r.ps.addf(n.ipv4.At, "", "ipv4 applies only to network mode \"bridge\", not %q", out.Mode)
		} else if ok {
			if err := parseIPv4(a); err != nil {
				r.ps.addf(n.ipv4.At, `like "10.88.0.10"`, "%v", err)
			}
		}
	}
	return out
}

func limits(l limitsv) Limits {
	var out Limits
	if l.memory != nil {
		out.Memory = l.memory.V
	}
	if l.cpus != nil {
		out.CPUs = l.cpus.V
	}
	if l.pids != nil {
		out.Pids = l.pids.V
	}
	return out
}

func pos(a at, f *srcFile) Pos { return Pos{File: f.abs, Line: a.Line, Col: a.Col} }

func boolOf(v *val[bool]) bool { return v != nil && v.V }

// profile renders a profile as written (host paths resolved), checking
// what does not depend on a job.
func (lo *loader) profile(l *layer) Profile {
	r := &resolver{ps: lo.ps, profile: true}
	p := Profile{
		Name:      l.name,
		Env:       r.subMap(l.env),
		Mounts:    r.mounts(l.mounts),
		Artifacts: r.artifacts(l.artifacts),
		Limits:    limits(l.limits),
		Raw:       r.subMap(l.raw),
		Pos:       pos(l.At, l.f),
	}
	if l.workdir != nil {
		p.Workdir = r.absolute(*l.workdir, "workdir")
	}
	if l.user != nil {
		p.User = l.user.V
	}
	if l.timeout != nil {
		p.Timeout = Duration(l.timeout.V)
	}
	if l.network != nil {
		n := r.network(l.network)
		p.Network = &n
	}
	if l.privileged != nil {
		p.Privileged = &l.privileged.V
	}
	if l.keepOnFailure != nil {
		p.KeepOnFailure = &l.keepOnFailure.V
	}
	return p
}

// expandJob merges a job with its profiles and expands its matrix.
func (lo *loader) expandJob(l *layer) []Job {
	m := merge(lo.layers(l))
	var keys, profiles []string
	for _, k := range l.matrix {
		keys = append(keys, k.name)
	}
	for _, p := range l.profiles {
		profiles = append(profiles, p.V)
	}
	base := "job." + l.name
	var out []Job
	for _, v := range variants(l.name, l.matrix) {
		r := &resolver{ps: lo.ps, vars: v.vars, keys: keys}
		j := Job{
			Name:          v.name,
			Base:          l.name,
			Profiles:      profiles,
			Env:           r.subMap(m.env),
			User:          "root",
			Mounts:        r.mounts(m.mounts),
			Artifacts:     r.artifacts(m.artifacts),
			Network:       r.network(m.network),
			Limits:        limits(m.limits),
			Raw:           r.subMap(m.raw),
			Privileged:    boolOf(m.privileged),
			KeepOnFailure: boolOf(m.keepOnFailure),
			Pos:           pos(l.At, l.f),
		}
		if len(v.vars) > 0 {
			j.Matrix = v.vars
		}
		switch {
		case m.image == nil && !m.written["image"]:
			lo.ps.addf(at{File: l.At.File, Line: l.At.Line, Col: l.At.Col, Path: base + ".image"}, `set image = "NAME"`, "job has no image")
		case m.image != nil:
			img, ok := r.sub(*m.image)
			j.Image = img
			if ok {
				lo.imageRef(sv{V: img, At: m.image.At})
			}
		}
		if m.workdir != nil {
			j.Workdir = r.absolute(*m.workdir, "workdir")
		}
		if m.user != nil {
			j.User, _ = r.sub(*m.user)
		}
		if m.timeout != nil {
			j.Timeout = Duration(m.timeout.V)
		}
		switch {
		case m.runAt == nil && !m.written["run"]:
			lo.ps.addf(at{File: l.At.File, Line: l.At.Line, Col: l.At.Col, Path: base + ".run"}, `set run = ["COMMAND", ...]`, "job has nothing to run")
		case m.runAt != nil && len(m.run) == 0:
			lo.ps.addf(*m.runAt, "", "run is empty")
		}
		j.Run = []string{}
		for _, line := range m.run {
			s, _ := r.sub(line)
			if strings.TrimSpace(s) == "" {
				lo.ps.addf(line.At, "", "empty command")
			}
			j.Run = append(j.Run, s)
		}
		out = append(out, j)
	}
	return out
}

// container merges a container with its profiles. Job-only keys of a
// profile (workdir, user, timeout, artifacts, keep_on_failure) do not apply.
func (lo *loader) container(l *layer) Container {
	m := merge(lo.layers(l))
	r := &resolver{ps: lo.ps, container: true}
	c := Container{
		Name:       l.name,
		State:      StateRunning,
		Env:        r.subMap(m.env),
		Mounts:     r.mounts(m.mounts),
		Network:    r.network(m.network),
		Limits:     limits(m.limits),
		Raw:        r.subMap(m.raw),
		Privileged: boolOf(m.privileged),
		Pos:        pos(l.At, l.f),
	}
	for _, p := range l.profiles {
		c.Profiles = append(c.Profiles, p.V)
	}
	switch {
	case m.image == nil && !m.written["image"]:
		lo.ps.addf(at{File: l.At.File, Line: l.At.Line, Col: l.At.Col, Path: "container." + l.name + ".image"}, `set image = "NAME"`, "container has no image")
	case m.image != nil:
		img, ok := r.sub(*m.image)
		c.Image = img
		if ok {
			lo.imageRef(sv{V: img, At: m.image.At})
		}
	}
	for _, s := range m.command {
		v, _ := r.sub(s)
		c.Command = append(c.Command, v)
	}
	if m.state != nil {
		c.State = m.state.V
	}
	for _, p := range m.ports {
		c.Ports = append(c.Ports, p.V)
	}
	if len(m.ports) > 0 && c.Network.Mode != "bridge" {
		lo.ps.addf(m.ports[0].At, `set network = "bridge"`, "ports need network mode \"bridge\", not %q", c.Network.Mode)
	}
	return c
}
