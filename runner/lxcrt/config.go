package lxcrt

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/runner/container"
)

// Where the minimal PID 1 lives inside a container. Why not the image's init:
// a job needs namespaces to attach to, not a booted distribution, and booting
// systemd costs seconds and brings services the job never asked for. Why
// these two binaries: both are static, so they run in any image; init.lxc
// (LXC's own, what lxc-execute uses) reaps orphans as PID 1, and busybox
// `sleep` keeps it alive until Stop. They are bind-mounted read-only from the
// host, so the image needs neither.
const (
	initDir     = ".stint"
	initPath    = "/" + initDir + "/init"
	busyboxPath = "/" + initDir + "/busybox"
)

// HostInit and HostBusybox are the host binaries bind-mounted as PID 1.
var (
	HostInit    = "/usr/sbin/init.lxc.static"
	HostBusybox = "/bin/busybox"
)

// Host describes what the host offers that the config depends on.
type Host struct {
	CgroupV2 bool // a pure cgroup v2 host (else v1 or hybrid: lxc.cgroup.*)
	AppArmor bool // AppArmor is enabled in the kernel
	// Seccomp is LXC's default seccomp policy file, when installed.
	Seccomp string
	// Agent is the stint-agent binary (FindAgent) that becomes PID 1 of
	// containers with the minimal init (the fast path, agent.go); "" for
	// init.lxc and the attach helper.
	Agent string
}

// SeccompPolicy is LXC's default denylist (kexec, module loading, ...).
var SeccompPolicy = "/usr/share/lxc/config/common.seccomp"

// ProbeHost detects the host's cgroup layout and AppArmor.
func ProbeHost() Host {
	var h Host
	// A pure v2 host mounts cgroup2 at /sys/fs/cgroup itself; a hybrid one
	// (like Debian with systemd.unified_cgroup_hierarchy=0) has v1
	// controllers there and v2 at /sys/fs/cgroup/unified.
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		h.CgroupV2 = true
	}
	if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.TrimSpace(string(b)) == "Y" {
		if _, err := os.Stat("/sys/kernel/security/apparmor"); err == nil {
			h.AppArmor = true
		}
	}
	if _, err := os.Stat(SeccompPolicy); err == nil {
		h.Seccomp = SeccompPolicy
	}
	return h
}

// kv is one LXC config line.
type kv struct{ k, v string }

// Render turns a container.Config into LXC config lines for container name.
// It is pure, so it is tested without root.
func Render(name string, cfg container.Config, host Host) ([]string, error) {
	rootfs := cfg.Root.Dir
	if rootfs == "" || !filepath.IsAbs(rootfs) {
		return nil, fmt.Errorf("container %s: rootfs %q is not an absolute path", name, rootfs)
	}
	var out []kv
	add := func(k, v string) { out = append(out, kv{k, v}) }
	hostname := cfg.Hostname
	if hostname == "" {
		hostname = name
	}
	add("lxc.uts.name", hostname)
	add("lxc.rootfs.path", "dir:"+rootfs)
	add("lxc.arch", "linux64")
	// A container for jobs: its own mounts of /proc and /sys, a minimal /dev.
	// The kernel lets only the owner of a network namespace mount sysfs; an
	// unprivileged container sharing the host's namespace gets the host's
	// /sys bound read-only instead.
	if cfg.Network.Kind() == container.NetworkHost && !cfg.Privileged {
		add("lxc.mount.auto", "proc:mixed cgroup:mixed")
		add("lxc.mount.entry", "/sys sys none rbind,ro,create=dir 0 0")
	} else {
		add("lxc.mount.auto", "proc:mixed sys:mixed cgroup:mixed")
	}
	add("lxc.autodev", "1")
	add("lxc.pty.max", "16")
	add("lxc.tty.max", "0")
	if cfg.Init.ConsoleLog == "" {
		add("lxc.console.path", "none")
	} else {
		// LXC's own pty console, whose output the monitor writes to the log.
		add("lxc.console.logfile", cfg.Init.ConsoleLog)
	}
	add("lxc.cap.drop", "sys_module mac_admin mac_override sys_time")
	if cfg.LogFile != "" {
		add("lxc.log.file", cfg.LogFile)
		add("lxc.log.level", "WARN")
	}
	sec, err := renderSecurity(name, cfg, host)
	if err != nil {
		return nil, err
	}
	out = append(out, sec...)

	if host.Agent != "" && cfg.Init.Kinded() == container.InitMinimal {
		out = append(out, renderAgentInit(host.Agent)...)
	} else {
		add("lxc.mount.entry", fmt.Sprintf("%s %s none bind,ro,create=file 0 0", HostInit, strings.TrimPrefix(initPath, "/")))
		add("lxc.mount.entry", fmt.Sprintf("%s %s none bind,ro,create=file 0 0", HostBusybox, strings.TrimPrefix(busyboxPath, "/")))
		initLines, err := renderInit(hostname, cfg.Init)
		if err != nil {
			return nil, err
		}
		out = append(out, initLines...)
	}

	for _, m := range cfg.Mounts {
		line, err := mountEntry(m)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", name, err)
		}
		add("lxc.mount.entry", line)
	}

	out = append(out, renderLimits(cfg.Limits, host)...)

	netLines, err := renderNetwork(name, cfg.Network)
	if err != nil {
		return nil, err
	}
	out = append(out, netLines...)

	// Raw keys last, so they win over everything above.
	for _, k := range sortedKeys(cfg.Raw) {
		if !strings.HasPrefix(k, "lxc.") {
			return nil, fmt.Errorf("container %s: raw key %q is not an LXC key", name, k)
		}
		add(k, cfg.Raw[k])
	}

	lines := make([]string, 0, len(out))
	for _, e := range out {
		if strings.ContainsAny(e.v, "\n\r") {
			return nil, fmt.Errorf("container %s: value of %s has a newline", name, e.k)
		}
		lines = append(lines, e.k+" = "+e.v)
	}
	return lines, nil
}

func mountEntry(m container.Mount) (string, error) {
	if !filepath.IsAbs(m.Target) || m.Target == "/" {
		return "", fmt.Errorf("mount target %q is not an absolute path below /", m.Target)
	}
	target := strings.TrimPrefix(filepath.Clean(m.Target), "/")
	// An entry is an fstab line: white space inside a path is written
	// octal-escaped, and LXC (getmntent) reads it back.
	target = fstabEscaper.Replace(target)
	switch m.Kind() {
	case container.MountBind:
		fi, err := os.Stat(m.Source)
		if err != nil {
			return "", fmt.Errorf("bind mount %s: %w", m.Target, err)
		}
		create := "create=dir"
		if !fi.IsDir() {
			create = "create=file"
		}
		opts := "bind," + create
		if m.Readonly {
			opts = "bind,ro," + create
		}
		return fmt.Sprintf("%s %s none %s 0 0", fstabEscaper.Replace(m.Source), target, opts), nil
	case container.MountTmpfs:
		opts := "create=dir,mode=1777"
		if m.Size > 0 {
			opts += fmt.Sprintf(",size=%d", m.Size)
		}
		if m.Readonly {
			opts += ",ro"
		}
		return fmt.Sprintf("tmpfs %s tmpfs %s 0 0", target, opts), nil
	default:
		return "", fmt.Errorf("mount %s: type %q: %w", m.Target, m.Type, container.ErrUnsupported)
	}
}

// fstabEscaper escapes what ends or splits an fstab field.
var fstabEscaper = strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`)

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// renderNetwork renders the container's network attachment.
func renderNetwork(name string, n container.Network) ([]kv, error) {
	switch n.Kind() {
	case container.NetworkNone:
		return []kv{{"lxc.net.0.type", "empty"}}, nil // a network namespace with loopback only
	case container.NetworkHost:
		return []kv{{"lxc.net.0.type", "none"}}, nil // the host's network namespace
	case container.NetworkBridge:
	default:
		return nil, fmt.Errorf("container %s: network mode %q: %w", name, n.Mode, container.ErrUnsupported)
	}
	b := n.Bridge
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("container %s: %w", name, err)
	}
	// In order: LXC wants lxc.net.N.type before the other keys of N.
	out := []kv{
		{"lxc.net.0.type", "veth"},
		{"lxc.net.0.link", b.Bridge},
		{"lxc.net.0.flags", "up"},
		{"lxc.net.0.name", b.IfName()},
	}
	if b.HostVeth != "" {
		out = append(out, kv{"lxc.net.0.veth.pair", b.HostVeth})
	}
	if b.MAC != "" {
		out = append(out, kv{"lxc.net.0.hwaddr", b.MAC})
	}
	// "addr/prefix broadcast": given only addr/prefix, LXC sets the
	// broadcast address to 0.0.0.255.
	out = append(out, kv{"lxc.net.0.ipv4.address", fmt.Sprintf("%s %s", b.Address, b.Broadcast())})
	if b.Gateway.IsValid() {
		out = append(out, kv{"lxc.net.0.ipv4.gateway", b.Gateway.String()})
	}
	for _, f := range [][2]string{{b.HostsFile, "etc/hosts"}, {b.ResolvConf, "etc/resolv.conf"}} {
		if f[0] != "" {
			out = append(out, kv{"lxc.mount.entry", fstabEscaper.Replace(f[0]) + " " + f[1] + " none bind,ro,create=file 0 0"})
		}
	}
	return out, nil
}

// renderSecurity confines the container: AppArmor, seccomp, the device
// allowlist of a privileged container, the id map of an unprivileged one.
func renderSecurity(name string, cfg container.Config, host Host) ([]kv, error) {
	var out []kv
	add := func(k, v string) { out = append(out, kv{k, v}) }
	if host.AppArmor {
		add("lxc.apparmor.profile", "generated")
		add("lxc.apparmor.allow_nesting", "0")
	} else {
		// Without AppArmor in the kernel, asking for a profile fails the start.
		add("lxc.apparmor.profile", "unconfined")
	}
	if host.Seccomp != "" {
		add("lxc.seccomp.profile", host.Seccomp)
	}
	if cfg.Privileged {
		// A privileged container's root is host root: only the usual
		// character devices, as LXC's common.conf allows.
		dev := "lxc.cgroup.devices."
		if host.CgroupV2 {
			dev = "lxc.cgroup2.devices."
		}
		add(dev+"deny", "a")
		for _, d := range []string{"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
			"c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"} {
			add(dev+"allow", d)
		}
	}
	if !cfg.Privileged {
		if cfg.IDMap == nil || cfg.IDMap.Size == 0 {
			return nil, fmt.Errorf("container %s: unprivileged without an id map", name)
		}
		lines, err := idmapLines(*cfg.IDMap)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", name, err)
		}
		for _, l := range lines {
			add("lxc.idmap", l)
		}
	}

	return out, nil
}

// renderLimits renders resource limits for the host's cgroup layout.
func renderLimits(lim container.Limits, host Host) []kv {
	var out []kv
	add := func(k, v string) { out = append(out, kv{k, v}) }
	if host.CgroupV2 {
		if lim.Memory > 0 {
			add("lxc.cgroup2.memory.max", fmt.Sprint(lim.Memory))
		}
		if lim.CPUs > 0 {
			add("lxc.cgroup2.cpu.max", fmt.Sprintf("%d 100000", int64(lim.CPUs*100000)))
		}
		if lim.Pids > 0 {
			add("lxc.cgroup2.pids.max", fmt.Sprint(lim.Pids))
		}
	} else {
		if lim.Memory > 0 {
			add("lxc.cgroup.memory.limit_in_bytes", fmt.Sprint(lim.Memory))
		}
		if lim.CPUs > 0 {
			add("lxc.cgroup.cpu.cfs_period_us", "100000")
			add("lxc.cgroup.cpu.cfs_quota_us", fmt.Sprint(int64(lim.CPUs*100000)))
		}
		if lim.Pids > 0 {
			add("lxc.cgroup.pids.max", fmt.Sprint(lim.Pids))
		}
	}

	return out
}

// idmapLines renders an id map as lxc.idmap values: the range, or the
// range with a hole for one host user (internal/idmap checks the hole).
func idmapLines(m container.IDMap) ([]string, error) {
	sm, err := shiftMap(m)
	if err != nil {
		return nil, err
	}
	return sm.LXC(), nil
}

// shifter is an id map, with or without its hole (internal/idmap).
type shifter interface {
	ShiftUID(id uint32) (uint32, bool)
	ShiftGID(id uint32) (uint32, bool)
	LXC() []string
}

// shiftMap is m as internal/idmap's map, its hole included.
func shiftMap(m container.IDMap) (shifter, error) {
	base := idmap.Map{HostUID: m.HostUID, HostGID: m.HostGID, Size: m.Size}
	if m.Hole == nil {
		return base, nil
	}
	return base.WithHole(m.Hole.UID, m.Hole.GID)
}
