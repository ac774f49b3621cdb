package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A layer is a [profile.*], [job.*] or [container.*] table as written, with
// the place of every value. Merging folds layers (profiles in order, then the
// job or container itself); unset scalars are nil.

// Keys valid in each kind of table. "mounts" and "artifacts" are accepted as
// spellings of "mount" and "artifact" (the JSON form uses the plural).
var (
	profileKeys   = []string{"env", "limits", "network", "raw", "mount", "mounts", "artifact", "artifacts", "workdir", "user", "timeout", "privileged", "keep_on_failure", "shell", "host_user"}
	jobKeys       = []string{"image", "profiles", "env", "workdir", "user", "timeout", "run", "mount", "mounts", "artifact", "artifacts", "matrix", "network", "limits", "raw", "privileged", "keep_on_failure", "shell", "host_user", "services", "target"}
	containerKeys = []string{"image", "profiles", "command", "state", "env", "mount", "mounts", "network", "ports", "limits", "raw", "privileged", "workdir", "user", "host_user", "home", "ssh_agent", "target"}
	mountKeys     = []string{"type", "source", "name", "target", "readonly", "size", "commit"}
	artifactKeys  = []string{"path", "dest", "when"}
	networkKeys   = []string{"mode", "bridge", "ipv4"}
	limitsKeys    = []string{"memory", "cpus", "pids"}
	networkModes  = []string{"none", "host", "bridge"}
	mountTypes    = []string{MountBind, MountCache, MountTmpfs}
	whenValues    = []string{WhenOnSuccess, WhenOnFailure, WhenAlways}
	commitValues  = []string{CommitOnSuccess, CommitAlways, CommitNever}
	stateValues   = []string{StateRunning, StateStopped}
)

type layer struct {
	kind string // profile | job | container
	name string
	f    *srcFile
	At   at // the table's header
	// written holds the keys present, valid or not: a key with a bad value
	// is reported once, not again as missing.
	written map[string]bool
	// counted: expansion.reserve has had this layer's first copy.
	counted bool

	image         *sv
	profiles      []sv
	env           map[string]sv
	workdir       *sv
	user          *sv
	timeout       *val[time.Duration]
	run           []sv
	runAt         *at // set when run was written (even empty)
	shell         *sv
	mounts        []mountv
	artifacts     []artv
	matrix        []matrixKey
	network       *netv
	limits        limitsv
	raw           map[string]sv
	privileged    *val[bool]
	keepOnFailure *val[bool]
	command       []sv
	commandAt     *at
	state         *sv
	ports         []val[Port]
	hostUser      *val[bool]
	home          *sv
	sshAgent      *val[bool]
	services      []sv // a job's services (spec/service.go)
	target        *sv  // cluster member (spec/target.go)
}

type mountv struct {
	At       at
	dir      string // host paths are relative to this directory
	typ      sv
	source   *sv
	name     *sv
	target   *sv
	readonly bool
	size     *val[int64]
	commit   *sv
}

type artv struct {
	At   at
	path *sv
	dest *sv
	when sv
}

type netv struct {
	At     at
	mode   sv
	bridge *sv
	ipv4   *sv
}

type limitsv struct {
	memory *val[int64]
	cpus   *val[float64]
	pids   *val[int64]
}

type matrixKey struct {
	At     at
	name   string
	values []sv
}

// decodeLayer decodes one [kind.name] table.
func (d *decoder) decodeLayer(kind, name string, v any, path string) *layer {
	l := &layer{kind: kind, name: name, f: d.f, At: d.at(path), written: map[string]bool{}}
	m, ok := d.table(v, path)
	if !ok {
		return l
	}
	for k := range m {
		l.written[k] = true
	}
	valid := map[string][]string{"profile": profileKeys, "job": jobKeys, "container": containerKeys}[kind]
	if _, a := m["mount"]; a {
		if _, b := m["mounts"]; b {
			d.problem(join(path, "mounts"), "", `"mount" and "mounts" are the same key: use one`)
		}
	}
	if _, a := m["artifact"]; a {
		if _, b := m["artifacts"]; b {
			d.problem(join(path, "artifacts"), "", `"artifact" and "artifacts" are the same key: use one`)
		}
	}
	d.each(m, path, valid, func(k string, v any, p string) {
		switch k {
		case "image":
			if s, ok := d.str(v, p); ok {
				l.image = &s
			}
		case "profiles":
			l.profiles, _ = d.strList(v, p, false)
		case "env":
			l.env = d.env(v, p)
		case "workdir":
			if s, ok := d.str(v, p); ok {
				l.workdir = &s
			}
		case "user":
			if s, ok := d.str(v, p); ok {
				l.user = &s
				if s.V == "" {
					d.problem(p, "", "user is empty")
				}
			}
		case "timeout":
			l.timeout = d.duration(v, p)
		case "shell":
			l.shell = d.shell(v, p)
		case "run":
			if run, ok := d.strList(v, p, true); ok {
				a := d.at(p)
				l.run, l.runAt = run, &a
				d.noNUL(run, p, "run line")
				d.ps.tooLong(run, "run line", MaxRunLine, LimitRunLine, runLineHint)
			}
		case "mount", "mounts":
			l.mounts = d.mounts(v, p)
		case "artifact", "artifacts":
			l.artifacts = d.artifacts(v, p)
		case "matrix":
			l.matrix = d.matrix(name, v, p)
		case "network":
			l.network = d.network(v, p)
		case "limits":
			l.limits = d.limits(v, p)
		case "raw":
			l.raw = d.strMap(v, p)
			for k := range l.raw {
				if len(k) < 5 || k[:4] != "lxc." {
					d.problem(join(p, k), `raw keys are LXC config keys, like "lxc.cap.drop"`, "not an LXC key")
				}
			}
		case "privileged":
			l.privileged = d.boolean(v, p)
		case "keep_on_failure":
			l.keepOnFailure = d.boolean(v, p)
		case "command":
			a := d.at(p)
			l.commandAt = &a
			var ok bool
			l.command, ok = d.strList(v, p, false)
			d.noNUL(l.command, p, "command")
			if ok && len(l.command) == 0 {
				d.problem(p, "omit command to boot the image's init", "command is empty")
			}
		case "state":
			if s, ok := d.enum(v, p, stateValues...); ok {
				l.state = &s
			}
		case "ports":
			l.ports = d.ports(v, p)
		case "host_user", "home", "ssh_agent":
			d.devKey(l, k, v, p)
		case "services":
			d.decodeServiceList(l, v, p)
		case "target":
			l.target = d.target(v, p)
		}
	})
	return l
}

// env decodes an env table: names, values without NUL, within MaxEnvValue.
func (d *decoder) env(v any, path string) map[string]sv {
	env := d.strMap(v, path)
	for k, val := range env {
		if !envRE.MatchString(k) {
			d.problem(join(path, k), "", "bad environment variable name")
		}
		if strings.ContainsRune(val.V, 0) {
			d.problem(join(path, k), "", "env value contains a NUL byte (the environment holds C strings)")
		}
		d.ps.tooLong([]sv{val}, "env value", MaxEnvValue, LimitEnvValue, envValueHint)
	}
	return env
}

func (d *decoder) mounts(v any, path string) []mountv {
	var out []mountv
	targets := map[string]string{}
	for i, m := range d.tables(v, path) {
		p := path + "[" + strconv.Itoa(i) + "]"
		mv := mountv{At: d.at(p), dir: d.f.dir, typ: sv{V: MountBind, At: d.at(p)}}
		d.each(m, p, mountKeys, func(k string, v any, kp string) {
			switch k {
			case "type":
				if s, ok := d.enum(v, kp, mountTypes...); ok {
					mv.typ = s
				} else {
					mv.typ.V = "" // reported; no type-specific checks
				}
			case "source", "name", "target":
				s, ok := d.str(v, kp)
				if !ok {
					return
				}
				switch k {
				case "source":
					mv.source = &s
				case "name":
					mv.name = &s
				default:
					mv.target = &s
				}
			case "readonly":
				if b := d.boolean(v, kp); b != nil {
					mv.readonly = b.V
				}
			case "size":
				mv.size = d.size(v, kp)
			case "commit":
				if s, ok := d.enum(v, kp, commitValues...); ok {
					mv.commit = &s
				}
			}
		})
		if mv.target != nil {
			if prev, dup := targets[mv.target.V]; dup {
				d.problem(join(p, "target"), "", "target %q is already mounted by %s", mv.target.V, prev)
			}
			targets[mv.target.V] = p
		}
		out = append(out, mv)
	}
	return out
}

func (d *decoder) artifacts(v any, path string) []artv {
	var out []artv
	for i, m := range d.tables(v, path) {
		p := path + "[" + strconv.Itoa(i) + "]"
		av := artv{At: d.at(p), when: sv{V: WhenOnSuccess, At: d.at(p)}}
		d.each(m, p, artifactKeys, func(k string, v any, kp string) {
			switch k {
			case "path", "dest":
				if s, ok := d.str(v, kp); ok {
					if k == "path" {
						av.path = &s
					} else {
						av.dest = &s
					}
				}
			case "when":
				if s, ok := d.enum(v, kp, whenValues...); ok {
					av.when = s
				}
			}
		})
		if av.path == nil {
			d.problem(p, "", "artifact without a path")
		}
		out = append(out, av)
	}
	return out
}

// network accepts "none" | "host" | "bridge" or {mode, bridge, ipv4}.
func (d *decoder) network(v any, path string) *netv {
	n := &netv{At: d.at(path)}
	switch x := v.(type) {
	case string:
		s, ok := d.enum(v, path, networkModes...)
		if !ok {
			return nil
		}
		n.mode = s
	case map[string]any:
		n.mode = sv{V: "", At: n.At}
		badMode := false
		d.each(x, path, networkKeys, func(k string, v any, kp string) {
			switch k {
			case "mode":
				if s, ok := d.enum(v, kp, networkModes...); ok {
					n.mode = s
				} else {
					badMode = true
				}
			case "bridge":
				if s, ok := d.str(v, kp); ok {
					n.bridge = &s
				}
			case "ipv4":
				if s, ok := d.str(v, kp); ok {
					n.ipv4 = &s
				}
			}
		})
		if badMode {
			return nil // reported; checking bridge and ipv4 against it would only add noise
		}
		if _, ok := x["mode"]; !ok {
			// A table naming a bridge or an address means bridge mode.
			n.mode.V = "bridge"
		}
	default:
		d.wrongType(path, `"none", "host", "bridge" or a table {mode, bridge, ipv4}`, v)
		return nil
	}
	return n
}

func (d *decoder) limits(v any, path string) limitsv {
	var l limitsv
	m, ok := d.table(v, path)
	if !ok {
		return l
	}
	d.each(m, path, limitsKeys, func(k string, v any, kp string) {
		switch k {
		case "memory":
			l.memory = d.size(v, kp)
		case "cpus":
			var f float64
			switch x := v.(type) {
			case int64:
				f = float64(x)
			case float64:
				f = x
			default:
				d.wrongType(kp, "a number", v)
				return
			}
			if f <= 0 {
				d.problem(kp, "", "cpus must be positive")
				return
			}
			l.cpus = &val[float64]{V: f, At: d.at(kp)}
		case "pids":
			n, ok := v.(int64)
			if !ok {
				d.wrongType(kp, "an integer", v)
				return
			}
			if n <= 0 {
				d.problem(kp, "", "pids must be positive")
				return
			}
			l.pids = &val[int64]{V: n, At: d.at(kp)}
		}
	})
	return l
}

func (d *decoder) matrix(job string, v any, path string) []matrixKey {
	m, ok := d.table(v, path)
	if !ok {
		return nil
	}
	var out []matrixKey
	d.each(m, path, nil, func(k string, v any, kp string) {
		mk := matrixKey{At: d.at(kp), name: k}
		if !envRE.MatchString(k) {
			d.problem(kp, "matrix keys are names like go or arch", "bad matrix key")
		}
		arr, ok := v.([]any)
		if !ok {
			d.wrongType(kp, "an array of values", v)
			return
		}
		if len(arr) == 0 {
			d.problem(kp, "", "matrix key has no values")
			return
		}
		seen := map[string]bool{}
		for i, e := range arr {
			ep := kp + "[" + strconv.Itoa(i) + "]"
			if f, isFloat := e.(float64); isFloat {
				d.floatMatrixValue(f, ep)
				continue
			}
			s, ok := d.scalar(e, ep)
			if !ok {
				continue
			}
			switch {
			case !matrixValueRE.MatchString(s.V):
				d.problem(ep, "letters, digits and . _ + : @ % -", "bad matrix value %q", s.V)
			case seen[s.V]:
				d.problem(ep, "", "duplicate matrix value %q", s.V)
			default:
				seen[s.V] = true
				mk.values = append(mk.values, s)
			}
		}
		out = append(out, mk)
	})
	if len(out) == 0 && len(m) == 0 {
		d.problem(path, "", "matrix has no keys")
	}
	d.matrixSize(job, out, path)
	return out
}

// floatMatrixValue refuses a float: TOML reads 1.20 as 1.2, so the
// variant would be go=1.2, silently.
func (d *decoder) floatMatrixValue(f float64, path string) {
	a := d.at(path)
	written := d.f.token(a)
	read := strconv.FormatFloat(f, 'f', -1, 64)
	if written == "" {
		written = read
	}
	msg := fmt.Sprintf("matrix value %s is a float", written)
	if written != read {
		msg += fmt.Sprintf(" (TOML reads it as %s)", read)
	}
	d.ps.add(Problem{File: a.File, Line: a.Line, Col: a.Col, Path: path, Msg: msg, Hint: fmt.Sprintf("quote it: %q", written)})
}

// matrixSize checks, before anything is expanded, that a matrix makes at
// most MaxVariants jobs with names of at most MaxVariantName bytes.
func (d *decoder) matrixSize(job string, keys []matrixKey, path string) {
	a := d.at(path)
	if n, saturated := variantCount(keys); n > MaxVariants {
		count := strconv.FormatUint(n, 10)
		if saturated {
			count = "more than " + count
		}
		d.ps.add(Problem{
			File: a.File, Line: a.Line, Col: a.Col, Path: path, Limit: LimitVariants,
			Msg:  fmt.Sprintf("matrix expands to %s variants, over the limit of %d per job", count, MaxVariants),
			Hint: "use fewer values, or split the job",
		})
	}
	if n := longestVariantName(job, keys); n > MaxVariantName {
		d.ps.add(Problem{
			File: a.File, Line: a.Line, Col: a.Col, Path: path, Limit: LimitVariantName,
			Msg:  fmt.Sprintf("matrix variant names are up to %d bytes long, over the limit of %d (they name directories)", n, MaxVariantName),
			Hint: "use shorter keys or values",
		})
	}
}

func (d *decoder) ports(v any, path string) []val[Port] {
	list, ok := d.strList(v, path, false)
	if !ok {
		return nil
	}
	var out []val[Port]
	seen := map[string]string{}
	for i, s := range list {
		p, err := ParsePort(s.V)
		ep := path + "[" + strconv.Itoa(i) + "]"
		if err != nil {
			d.problem(ep, portHint, "%v", err)
			continue
		}
		key := p.HostIP + ":" + strconv.Itoa(p.HostPort) + "/" + p.Proto
		if prev, dup := seen[key]; dup {
			d.problem(ep, "", "host port %d/%s is already published by %s", p.HostPort, p.Proto, prev)
			continue
		}
		seen[key] = ep
		out = append(out, val[Port]{V: p, At: s.At})
	}
	return out
}

// noNUL refuses strings with a NUL byte: the kernel takes argv as C
// strings, so the line would be cut short there without a word.
func (d *decoder) noNUL(list []sv, path, what string) {
	for i, s := range list {
		if strings.ContainsRune(s.V, 0) {
			d.problem(path+"["+strconv.Itoa(i)+"]", "", "%s contains a NUL byte (a command is a C string)", what)
		}
	}
}

// shell decodes the command line each run line is appended to.
func (d *decoder) shell(v any, path string) *sv {
	if arr, isArr := v.([]any); isArr {
		words := make([]string, 0, len(arr))
		for _, e := range arr {
			if w, ok := e.(string); ok {
				words = append(words, w)
			}
		}
		d.problem(path, fmt.Sprintf("write shell = %s (the run line is appended as one more argument)", tomlQuote(strings.Join(words, " "))), "expected a string, got an array")
		return nil
	}
	s, ok := d.str(v, path)
	switch {
	case !ok:
		return nil
	case strings.TrimSpace(s.V) == "":
		d.problem(path, "omit shell for the default, /bin/sh -c", "shell is empty")
		return nil
	case strings.ContainsRune(s.V, 0):
		d.problem(path, "", "shell contains a NUL byte (a command is a C string)")
		return nil
	}
	return &s
}
