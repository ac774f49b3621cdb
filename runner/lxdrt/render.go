package lxdrt

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/stintdev/stint/internal/lazyre"
	"github.com/stintdev/stint/runner/container"
)

// CreateOptions are what the remote needs beyond the contract's Config
// (see the report to issue 12: they belong in container.Config).
type CreateOptions struct {
	// Target places the instance on a cluster member; empty: the
	// cluster's scheduler places it.
	Target string
	// Tags become user.stint.<key> config keys (set, job, journal id, the
	// client's host and pid): what GC decides on. Keys are lower-case
	// letters, digits, '-' and '_'.
	Tags map[string]string
	// Ports are proxy devices from the remote host into the container.
	Ports []Port
	// Persistent keeps the instance non-ephemeral even with the minimal
	// init (by default only job-like containers, with the minimal init,
	// are ephemeral).
	Persistent bool
}

// Port forwards a listener on the instance's host into the container, as
// LXD proxy device addresses ("tcp:0.0.0.0:8080" → "tcp:127.0.0.1:80").
type Port struct {
	Listen  string
	Connect string
}

// plan is a Config rendered for LXD.
type plan struct {
	config  map[string]string
	devices map[string]map[string]string
	copies  []container.Mount // read-only binds copied in before Start
	init    string            // the init script written at initPath, if any
	volumes []container.Mount // cache volumes (devices added once they exist)
}

// initPath is where a minimal or command init script is written in the
// instance: lxc.init.cmd can't quote, so PID 1 is a shell script.
const initPath = "/.stint-init"

// minimalInit sleeps, reaping orphans while it waits: Start and Exec need
// only namespaces to enter, not a booted distribution.
const minimalInit = `#!/bin/sh
# stint's minimal init: PID 1 of a job's container, until it is stopped.
trap 'exit 0' TERM
while :; do sleep 3600 & wait $!; done
`

var tagRE = lazyre.New(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// profileNICs are the nic devices of the default profile (by name), which
// network mode none masks.
func (r *Runtime) render(name string, cfg container.Config, o CreateOptions, profileNICs []string) (plan, error) {
	p := plan{config: map[string]string{keyOwner: r.opts.Owner, keyName: name}, devices: map[string]map[string]string{}}
	var rawLXC []string
	for k, v := range o.Tags {
		if !tagRE.MatchString(k) || k == "owner" || k == "name" || k == "ro-binds" {
			return plan{}, r.unsupported(name, "tag %q", k)
		}
		p.config[keyPrefix+k] = v
	}
	if cfg.Privileged {
		p.config["security.privileged"] = "true"
	}
	if cfg.IDMap != nil && cfg.IDMap.Hole != nil {
		// host_user maps this host's user, whose files are on this host:
		// on a remote their uid means someone else, if anyone.
		return plan{}, r.unsupported(name, "host_user (uid %d mapped 1:1)", cfg.IDMap.Hole.UID)
	}
	renderLimits(p.config, cfg.Limits)
	switch cfg.Init.Kinded() {
	case container.InitMinimal:
		p.init = minimalInit
	case container.InitCommand:
		if len(cfg.Init.Command) == 0 {
			return plan{}, r.unsupported(name, "an init command without argv")
		}
		p.init = "#!/bin/sh\n# stint: the container's command\nexec " + quoteSh(cfg.Init.Command) + "\n"
	}
	if p.init != "" {
		rawLXC = append(rawLXC, "lxc.init.cmd = /bin/sh "+initPath)
	}
	for _, kv := range cfg.Init.Env {
		k, v, _ := strings.Cut(kv, "=")
		p.config["environment."+k] = v
	}
	if cfg.Hostname != "" && cfg.Hostname != InstanceName(name) {
		rawLXC = append(rawLXC, "lxc.uts.name = "+cfg.Hostname)
	}
	if err := r.renderNetwork(name, p, cfg.Network, profileNICs); err != nil {
		return plan{}, err
	}
	var binds []string
	for i, m := range cfg.Mounts {
		if !path.IsAbs(m.Target) {
			return plan{}, r.unsupported(name, "mount target %q (not absolute)", m.Target)
		}
		dev := fmt.Sprintf("stint-mount-%d", i)
		switch m.Kind() {
		case container.MountBind:
			switch {
			case r.opts.LocalDisks:
				p.devices[dev] = map[string]string{"type": "disk", "source": m.Source, "path": m.Target, "readonly": strconv.FormatBool(m.Readonly)}
			case !m.Readonly:
				return plan{}, r.unsupported(name, "read-write bind %s -> %s (the client's disk is not on the remote; make it readonly or use a cache volume)", m.Source, m.Target)
			default:
				p.copies = append(p.copies, m)
				binds = append(binds, m.Target)
			}
		case container.MountTmpfs:
			opts := "rw,nosuid,nodev,create=dir"
			if m.Size > 0 {
				opts += ",size=" + strconv.FormatInt(m.Size, 10)
			}
			rawLXC = append(rawLXC, fmt.Sprintf("lxc.mount.entry = tmpfs %s tmpfs %s 0 0", strings.TrimPrefix(path.Clean(m.Target), "/"), opts))
		case container.MountVolume:
			if m.Volume == "" {
				return plan{}, r.unsupported(name, "a volume mount at %s without a name", m.Target)
			}
			p.volumes = append(p.volumes, m)
		default:
			return plan{}, r.unsupported(name, "mount type %q at %s", m.Type, m.Target)
		}
	}
	if len(binds) > 0 {
		p.config[keyBinds] = strings.Join(binds, "\n")
	}
	for i, port := range o.Ports {
		p.devices[fmt.Sprintf("stint-port-%d", i)] = map[string]string{"type": "proxy", "listen": port.Listen, "connect": port.Connect}
	}
	if err := r.renderRaw(name, p.config, cfg.Raw, &rawLXC); err != nil {
		return plan{}, err
	}
	if len(rawLXC) > 0 {
		p.config["raw.lxc"] = strings.Join(rawLXC, "\n")
	}
	return p, nil
}

func renderLimits(c map[string]string, l container.Limits) {
	if l.Memory > 0 {
		c["limits.memory"] = strconv.FormatInt(l.Memory, 10) + "B"
	}
	if l.CPUs > 0 {
		if l.CPUs == float64(int64(l.CPUs)) {
			c["limits.cpu"] = strconv.FormatInt(int64(l.CPUs), 10)
		} else {
			// A hard quota: CPUs x 100ms of CPU time every 100ms.
			c["limits.cpu.allowance"] = fmt.Sprintf("%dms/100ms", int64(l.CPUs*100+0.5))
		}
	}
	if l.Pids > 0 {
		c["limits.processes"] = strconv.FormatInt(l.Pids, 10)
	}
}

func (r *Runtime) renderNetwork(name string, p plan, n container.Network, profileNICs []string) error {
	switch n.Kind() {
	case container.NetworkNone:
		for _, nic := range profileNICs {
			p.devices[nic] = map[string]string{"type": "none"}
		}
	case container.NetworkBridge:
		if r.opts.Network != "" {
			for _, nic := range profileNICs {
				p.devices[nic] = map[string]string{"type": "none"}
			}
			p.devices["eth0"] = map[string]string{"type": "nic", "network": r.opts.Network, "name": "eth0"}
		} else if len(profileNICs) == 0 {
			return r.unsupported(name, "bridge networking without a network (the default profile has no NIC; give the remote a network)")
		}
	default:
		return r.unsupported(name, "network mode %q", n.Kind())
	}
	return nil
}

// renderRaw passes the user's raw keys that are LXD config keys; LXC keys
// and stint's own or LXD's volatile keys are refused.
func (r *Runtime) renderRaw(name string, c map[string]string, raw map[string]string, rawLXC *[]string) error {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "lxc."):
			return r.unsupported(name, "raw key %q is an LXC key; spell it as an LXD config key (raw.lxc, security.*, limits.*, linux.*)", k)
		case strings.HasPrefix(k, keyPrefix), strings.HasPrefix(k, "volatile."):
			return r.unsupported(name, "raw key %q is reserved", k)
		case k == "raw.lxc":
			*rawLXC = append(*rawLXC, raw[k])
		default:
			c[k] = raw[k]
		}
	}
	return nil
}

// quoteSh quotes argv for a shell script.
func quoteSh(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
