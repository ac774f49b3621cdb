package spec

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

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
	// x accounts for the text substitution makes (nil: no limit).
	x *expansion
}

// sub substitutes s; ok is false when s cannot be checked further.
func (r *resolver) sub(s sv) (string, bool) {
	if r.profile {
		out, _ := substitute(s.V, nil)
		return out, !strings.Contains(s.V, "${")
	}
	if r.x != nil && !r.x.substitute(s.V, r.vars) {
		return s.V, false // over the limit: reported once, by expandJob
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
		if mv.target != nil {
			m.Target = path.Clean(r.absolute(*mv.target, "mount target"))
		}
		forbid := func(key string, where *at) {
			if where != nil {
				r.ps.addf(*where, "", "%s does not apply to a %s mount", key, m.Type)
			}
		}
		if m.Type != MountCache && m.Type != "" {
			forbid("commit", atOf(mv.commit))
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
			if mv.target == nil {
				// The same path inside as on the host: a project where
				// its developer has it (docs/devenv.md).
				m.Target = path.Clean(m.Source)
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
			if mv.commit != nil {
				if r.container {
					// A long-lived container is never done: nothing
					// would decide when its copy replaces the cache.
					r.ps.addf(mv.commit.At, "only a job's cache mount commits", "commit does not apply to a container's cache mount")
				}
				m.Commit = mv.commit.V
			}
		case MountTmpfs:
			forbid("source", atOf(mv.source))
			forbid("name", atOf(mv.name))
			if mv.size != nil {
				m.Size = mv.size.V
			}
		}
		if m.Target == "" {
			if m.Type != MountBind {
				r.ps.addf(mv.At, "", "mount without a target")
			}
			continue
		}
		if i, dup := index[m.Target]; dup {
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
		case ok && privateBridgeRE.MatchString(b):
			r.ps.addf(n.bridge.At, "name another bridge", "bridge %q is a name stint gives a job's private network (with services)", b)
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
	if l.shell != nil {
		p.Shell, _ = r.sub(*l.shell)
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
	if l.hostUser != nil {
		p.HostUser = &l.hostUser.V
	}
	return p
}

// expandJob merges a job with its profiles and expands its matrix.
func (lo *loader) expandJob(l *layer) []Job {
	if n, _ := variantCount(l.matrix); n > MaxVariants || longestVariantName(l.name, l.matrix) > MaxVariantName {
		return nil // reported when decoded; never expanded
	}
	if lo.expansion.over {
		return nil // reported once, where it went over
	}
	ls := lo.layers(l)
	if !lo.expansion.reserve(ls, l.matrix) {
		lo.ps.add(lo.expansion.problem(l))
		return nil
	}
	m := merge(ls)
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
		r := &resolver{ps: lo.ps, vars: v.vars, keys: keys, x: &lo.expansion}
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
			HostUser:      boolOf(m.hostUser),
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
				j.Image = lo.imageRef(sv{V: img, At: m.image.At})
			}
		}
		if m.workdir != nil {
			j.Workdir = r.absolute(*m.workdir, "workdir")
		}
		if m.user != nil {
			j.User, _ = r.sub(*m.user)
		}
		j.ImageUser = m.user == nil
		if m.timeout != nil {
			j.Timeout = Duration(m.timeout.V)
		}
		if m.shell != nil {
			j.Shell, _ = r.sub(*m.shell)
		}
		j.Target = r.target(m.target)
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
			lo.ps.tooLongSubstituted(line, s, "run line", MaxRunLine, LimitRunLine, runLineHint)
			j.Run = append(j.Run, s)
		}
		for k, v := range j.Env {
			lo.ps.tooLongSubstituted(m.env[k], v, "env value", MaxEnvValue, LimitEnvValue, envValueHint)
		}
		j.Services = lo.jobServices(m, r, j.Network)
		if lo.expansion.over {
			lo.ps.add(lo.expansion.problem(l))
			return nil
		}
		out = append(out, j)
	}
	return out
}

// container merges a container with its profiles. Job-only keys of a
// profile (workdir, user, timeout, artifacts, keep_on_failure) do not apply.
func (lo *loader) container(l *layer) Container {
	if lo.expansion.over {
		return Container{Name: l.name} // reported once, where it went over
	}
	ls := lo.layers(l)
	if !lo.expansion.reserve(ls, nil) {
		lo.ps.add(lo.expansion.problem(l))
		return Container{Name: l.name}
	}
	m := merge(ls)
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
			c.Image = lo.imageRef(sv{V: img, At: m.image.At})
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
	lo.devKeys(&c, m, r)
	c.Target = r.target(m.target)
	return c
}
