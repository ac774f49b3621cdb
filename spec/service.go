package spec

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// Services (issue 15, docs/spec.md "Services"): a [service.NAME] table is a
// container started beside every job that names it in `services`, on a
// network private to that job, where the job reaches it as NAME.

// DefaultReadyTimeout bounds a service's ready checks when the spec sets no
// ready_timeout.
const DefaultReadyTimeout = 60 * time.Second

// Service is one [service.NAME] table, resolved.
type Service struct {
	// Name is the host name the job reaches the service by.
	Name  string `json:"name"`
	Image string `json:"image"`
	// Command is PID 1's argv (not through a shell); empty boots the
	// image's init.
	Command []string          `json:"command,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// Ports are published on the host, as for containers.
	Ports []Port `json:"ports,omitempty"`
	// Ready is a shell line run with /bin/sh -c inside the service's
	// container, again until it exits 0; "" means ready once started.
	Ready string `json:"ready,omitempty"`
	// ReadyTimeout bounds the ready checks (DefaultReadyTimeout unless set).
	ReadyTimeout Duration `json:"ready_timeout"`
	Pos          Pos      `json:"pos"`
}

var serviceKeys = []string{"image", "command", "env", "ports", "ready", "ready_timeout"}

// serviceNameRE: a service's name is its host name on the job's network,
// one DNS label (no '_', which nameRE allows).
var serviceNameRE = lazyRE(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// serviceDef is a decoded [service.NAME] with the place of its image.
type serviceDef struct {
	svc   Service
	image *sv
	at    at
	f     *srcFile
}

// decodeService decodes one [service.NAME] table.
func (d *decoder) decodeService(name string, v any, path string) *serviceDef {
	a := d.at(path)
	def := &serviceDef{at: a, f: d.f, svc: Service{Name: name, ReadyTimeout: Duration(DefaultReadyTimeout),
		Pos: Pos{File: d.f.abs, Line: a.Line, Col: a.Col}}}
	if !serviceNameRE.MatchString(name) {
		d.problem(path, "a service's name is its host name: letters, digits and -", "bad service name %q", name)
	}
	m, ok := d.table(v, path)
	if !ok {
		return def
	}
	d.each(m, path, serviceKeys, func(k string, v any, p string) {
		switch k {
		case "image":
			if s, ok := d.str(v, p); ok {
				def.image = &s
				def.svc.Image = s.V
			}
		case "command":
			cmd, ok := d.strList(v, p, false)
			d.noNUL(cmd, p, "command")
			if ok && len(cmd) == 0 {
				d.problem(p, "omit command to boot the image's init", "command is empty")
			}
			for _, s := range cmd {
				def.svc.Command = append(def.svc.Command, s.V)
			}
		case "env":
			for k, s := range d.env(v, p) {
				if def.svc.Env == nil {
					def.svc.Env = map[string]string{}
				}
				def.svc.Env[k] = s.V
			}
		case "ports":
			for _, pv := range d.ports(v, p) {
				def.svc.Ports = append(def.svc.Ports, pv.V)
			}
		case "ready":
			s, ok := d.str(v, p)
			switch {
			case !ok:
			case strings.TrimSpace(s.V) == "":
				d.problem(p, "omit ready for a service that is ready once started", "ready is empty")
			case strings.ContainsRune(s.V, 0):
				d.problem(p, "", "ready contains a NUL byte (a command is a C string)")
			default:
				def.svc.Ready = s.V
			}
		case "ready_timeout":
			if t := d.duration(v, p); t != nil {
				def.svc.ReadyTimeout = Duration(t.V)
			}
		}
	})
	if _, ok := m["image"]; !ok {
		d.problem(path, `set image = "NAME"`, "service has no image")
	}
	return def
}

// checkServices checks the services' image references and returns them in
// the order written.
func (l *loader) checkServices() []Service {
	defs := mapValues(l.services)
	sort.Slice(defs, func(i, j int) bool { return before(defs[i].f, defs[i].at, defs[j].f, defs[j].at) })
	out := []Service{}
	for _, def := range defs {
		if def.image != nil {
			l.imageRef(*def.image)
		}
		out = append(out, def.svc)
	}
	return out
}

// jobServices resolves a job's `services` list: each name a [service.*] of
// the set, once. A job with services is on its private network, so a fixed
// bridge or address of its own does not apply.
func (l *loader) jobServices(m *layer, r *resolver, n Network) []Service {
	if len(m.services) == 0 {
		return nil
	}
	names := make([]string, 0, len(l.services))
	for name := range l.services {
		names = append(names, name)
	}
	var out []Service
	seen := map[string]bool{}
	for _, s := range m.services {
		name, ok := r.sub(s)
		if !ok {
			continue
		}
		def, known := l.services[name]
		switch {
		case !known:
			hint := suggest(name, names)
			if hint == "" {
				hint = "define it as [service." + name + "]"
			}
			l.ps.addf(s.At, hint, "unknown service %q", name)
		case seen[name]:
			l.ps.addf(s.At, "", "service %q is named twice", name)
		default:
			seen[name] = true
			out = append(out, def.svc)
		}
	}
	if m.network != nil && (n.Bridge != "" || n.IPv4 != "") {
		l.ps.addf(m.network.At, "omit bridge and ipv4, or the job's services",
			"a job with services is on a network of its own: bridge and ipv4 do not apply")
	}
	return out
}

// decodeServiceList decodes a job's `services`.
func (d *decoder) decodeServiceList(l *layer, v any, p string) {
	list, ok := d.strList(v, p, false)
	if !ok {
		return
	}
	for i, s := range list {
		if s.V == "" {
			d.problem(p+"["+strconv.Itoa(i)+"]", "", "service name is empty")
			continue
		}
		l.services = append(l.services, s)
	}
	if len(list) == 0 {
		d.problem(p, "omit services for a job without any", "services is empty")
	}
}

// privateBridgeRE is what stint names a job's private network (net's
// PrivateBridge): a spec may not name one, or a job could join another's.
var privateBridgeRE = lazyRE(`^sj[io][0-9a-f]{12}$`)
