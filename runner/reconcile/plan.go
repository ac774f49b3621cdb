package reconcile

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/stintdev/stint/spec"
)

// Status is the live state of an owned container, as the Backend sees it.
type Status string

// Statuses. A container the runtime reports frozen or in transition is
// reported by the Backend as the nearest of running or stopped.
const (
	StatusRunning Status = "running"
	StatusStopped Status = "stopped"
	// StatusMissing: the set's record exists but the container is gone
	// (destroyed by hand, or a crash mid-create).
	StatusMissing Status = "missing"
)

// Observed is one container the set owns, as it exists on the host.
type Observed struct {
	Name   string `json:"name"` // the spec's container name, not the runtime's
	Set    string `json:"set"`
	Hash   string `json:"hash"` // Hash of the container spec that made it
	Status Status `json:"status"`
	// Spec is the resolved container stored when it was made or last
	// updated; nil when the record has none (then only Hash is compared).
	Spec *spec.Container `json:"spec,omitempty"`
	// Started is the container as it was last started: what a running
	// container really has. nil when the Backend does not know; then a
	// running container is taken to have Spec.
	Started *spec.Container `json:"started,omitempty"`
}

// Kind is what an Action does.
type Kind string

// Action kinds.
const (
	KindNone     Kind = "none"     // already as specified
	KindCreate   Kind = "create"   // not there: create, then bring to State
	KindStart    Kind = "start"    // stopped, should run
	KindStop     Kind = "stop"     // running, should be stopped
	KindUpdate   Kind = "update"   // in-place change (limits, env), then bring to State
	KindRestart  Kind = "restart"  // running with old limits or env: update, stop, start
	KindRecreate Kind = "recreate" // destroy and create again, then bring to State
	KindDelete   Kind = "delete"   // owned by the set, gone from its specs
)

// Action is one step of a plan, for one container.
type Action struct {
	Kind    Kind     `json:"action"`
	Name    string   `json:"name"`
	Set     string   `json:"set"`
	Reasons []string `json:"reasons,omitempty"`
	// From is the observed status ("" when the container does not exist);
	// State the status it must end in ("" for delete).
	From  Status `json:"from,omitempty"`
	State Status `json:"state,omitempty"`
	// Desired is the container as the specs want it (nil for delete).
	Desired *spec.Container `json:"-"`
	// Hash is Hash(*Desired), what the Backend records.
	Hash string `json:"hash,omitempty"`
}

// Changes reports whether applying a would change anything.
func (a Action) Changes() bool { return a.Kind != KindNone }

// Hash is a stable digest of what shapes c (not its name, position,
// profile names or desired state): equal hashes mean nothing to change. It is
// spec.Container.Hash, named here because plans and records speak of it.
func Hash(c spec.Container) string { return c.Hash() }

// desiredState is the state c asks for; empty means running.
func desiredState(c spec.Container) Status {
	if c.State == spec.StateStopped {
		return StatusStopped
	}
	return StatusRunning
}

// Plan compares the containers the specs of set want with those the set
// owns on the host, and returns one Action per container, sorted by name.
// Observed containers of another set are ignored: a plan never touches what
// its own set did not make.
func Plan(desired []spec.Container, set string, actual []Observed) []Action {
	have := map[string]Observed{}
	for _, o := range actual {
		if o.Set == set {
			have[o.Name] = o
		}
	}
	var out []Action
	want := map[string]bool{}
	for i := range desired {
		d := desired[i]
		want[d.Name] = true
		a := Action{Name: d.Name, Set: set, Desired: &d, Hash: Hash(d), State: desiredState(d)}
		o, ok := have[d.Name]
		switch {
		case !ok:
			a.Kind = KindCreate
			a.Reasons = []string{"not on the host"}
		case o.Status == StatusMissing:
			a.Kind, a.From = KindRecreate, o.Status
			a.Reasons = []string{"container missing (its record is there, the container is gone)"}
		default:
			a.From = o.Status
			planExisting(&a, o, d)
		}
		out = append(out, a)
	}
	for _, o := range have {
		if !want[o.Name] {
			out = append(out, Action{Kind: KindDelete, Name: o.Name, Set: set, From: o.Status,
				Reasons: []string{"no longer in the specs of set " + set}})
		}
	}
	slices.SortFunc(out, func(a, b Action) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// planExisting fills a for a container that exists with status o.Status.
func planExisting(a *Action, o Observed, d spec.Container) {
	var recreate, inPlace []string
	if o.Hash != a.Hash {
		if o.Spec == nil {
			recreate = []string{"spec changed (no stored spec to compare: " + short(o.Hash) + " → " + short(a.Hash) + ")"}
		} else {
			recreate, inPlace = diff(*o.Spec, d)
			if len(recreate)+len(inPlace) == 0 {
				// The hash moved but no field we know of did: be safe.
				recreate = []string{"spec changed (" + short(o.Hash) + " → " + short(a.Hash) + ")"}
			}
		}
	}
	stateChange := o.Status != a.State
	running := o.Status == StatusRunning && a.State == StatusRunning
	switch {
	case len(recreate) > 0:
		a.Kind = KindRecreate
		a.Reasons = append(recreate, inPlace...)
	case running && len(inPlace) > 0:
		// Env and limits are read at a start: a running container keeps
		// its old ones until it restarts.
		a.Kind = KindRestart
		a.Reasons = suffixed(inPlace, " (needs a restart)")
	case running && o.Started != nil && Hash(*o.Started) != a.Hash:
		// Recorded already (an update while it ran), not yet started.
		_, pending := diff(*o.Started, d)
		if len(pending) == 0 {
			pending = []string{"started from an older spec (" + short(Hash(*o.Started)) + ")"}
		}
		a.Kind = KindRestart
		a.Reasons = suffixed(pending, " (recorded, needs a restart)")
	case len(inPlace) > 0:
		a.Kind = KindUpdate
		a.Reasons = suffixed(inPlace, " (from the next start)")
		if stateChange {
			a.Reasons = append(a.Reasons, fmt.Sprintf("state: %s → %s", o.Status, a.State))
		}
	case stateChange && a.State == StatusRunning:
		a.Kind = KindStart
		a.Reasons = []string{fmt.Sprintf("state: %s → %s", o.Status, a.State)}
	case stateChange:
		a.Kind = KindStop
		a.Reasons = []string{fmt.Sprintf("state: %s → %s", o.Status, a.State)}
	default:
		a.Kind = KindNone
	}
}

func suffixed(reasons []string, suffix string) []string {
	out := make([]string, len(reasons))
	for i, r := range reasons {
		out[i] = r + suffix
	}
	return out
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(none)"
	}
	return h
}

// diff says which fields differ between the stored container a and the
// desired b: those that force a recreate, and those applied in place.
//
// In place: limits and env, recorded at once and seen by the container's
// next start (a running container keeps its current values until then, so
// the plan restarts it).
// Everything else is baked into the rootfs or the LXC config at create time
// (image, mounts, command as PID 1, network, ports, privileged, raw keys),
// so it means a new container.
func diff(a, b spec.Container) (recreate, inPlace []string) {
	if a.Image != b.Image {
		recreate = append(recreate, fmt.Sprintf("image changed: %q → %q", a.Image, b.Image))
	}
	if !slices.Equal(a.Command, b.Command) {
		recreate = append(recreate, fmt.Sprintf("command changed: %s → %s", fmtCommand(a.Command), fmtCommand(b.Command)))
	}
	if m := diffMounts(a.Mounts, b.Mounts); m != "" {
		recreate = append(recreate, "mounts changed: "+m)
	}
	if a.Network != b.Network {
		recreate = append(recreate, fmt.Sprintf("network changed: %s → %s", fmtNetwork(a.Network), fmtNetwork(b.Network)))
	}
	if !slices.Equal(a.Ports, b.Ports) {
		recreate = append(recreate, fmt.Sprintf("ports changed: %s → %s", fmtPorts(a.Ports), fmtPorts(b.Ports)))
	}
	if a.Privileged != b.Privileged {
		recreate = append(recreate, fmt.Sprintf("privileged changed: %t → %t", a.Privileged, b.Privileged))
	}
	if k := diffKeys(a.Raw, b.Raw); k != "" {
		recreate = append(recreate, "raw LXC keys changed: "+k)
	}
	if a.Limits != b.Limits {
		inPlace = append(inPlace, "limits changed: "+diffLimits(a.Limits, b.Limits))
	}
	// Values are not printed: env often holds secrets.
	if k := diffKeys(a.Env, b.Env); k != "" {
		inPlace = append(inPlace, "env changed: "+k)
	}
	return recreate, inPlace
}

func fmtCommand(c []string) string {
	if len(c) == 0 {
		return "(image init)"
	}
	b, _ := json.Marshal(c)
	return string(b)
}

func fmtNetwork(n spec.Network) string {
	mode := cmp.Or(n.Mode, "none")
	var opts []string
	if n.Bridge != "" {
		opts = append(opts, n.Bridge)
	}
	if n.IPv4 != "" {
		opts = append(opts, n.IPv4)
	}
	if len(opts) == 0 {
		return mode
	}
	return mode + "(" + strings.Join(opts, ", ") + ")"
}

func fmtPorts(ps []spec.Port) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprintf("%d:%d/%s", p.HostPort, p.ContainerPort, p.Proto)
		if p.HostIP != "" {
			s[i] = p.HostIP + ":" + s[i]
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}

// diffMounts names the targets added (+), removed (-) and changed (~).
func diffMounts(a, b []spec.Mount) string {
	am, bm := map[string]spec.Mount{}, map[string]spec.Mount{}
	for _, m := range a {
		am[m.Target] = m
	}
	for _, m := range b {
		bm[m.Target] = m
	}
	var out []string
	for _, t := range slices.Sorted(maps.Keys(bm)) {
		if old, ok := am[t]; !ok {
			out = append(out, "+"+t)
		} else if old != bm[t] {
			out = append(out, "~"+t)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(am)) {
		if _, ok := bm[t]; !ok {
			out = append(out, "-"+t)
		}
	}
	if len(out) == 0 && !slices.Equal(a, b) {
		return "order"
	}
	return strings.Join(out, ", ")
}

// diffKeys names the keys added (+), removed (-) and changed (~).
func diffKeys(a, b map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if old, ok := a[k]; !ok {
			out = append(out, "+"+k)
		} else if old != b[k] {
			out = append(out, "~"+k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if _, ok := b[k]; !ok {
			out = append(out, "-"+k)
		}
	}
	return strings.Join(out, ", ")
}

func diffLimits(a, b spec.Limits) string {
	var out []string
	if a.Memory != b.Memory {
		out = append(out, fmt.Sprintf("memory %s → %s", fmtBytes(a.Memory), fmtBytes(b.Memory)))
	}
	if a.CPUs != b.CPUs {
		out = append(out, fmt.Sprintf("cpus %s → %s", fmtNum(a.CPUs), fmtNum(b.CPUs)))
	}
	if a.Pids != b.Pids {
		out = append(out, fmt.Sprintf("pids %s → %s", fmtNum(float64(a.Pids)), fmtNum(float64(b.Pids))))
	}
	return strings.Join(out, ", ")
}

func fmtBytes(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	for _, u := range []struct {
		s string
		n int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.n == 0 {
			return fmt.Sprintf("%d%s", n/u.n, u.s)
		}
	}
	return fmt.Sprintf("%dB", n)
}

func fmtNum(f float64) string {
	if f == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%g", f)
}
