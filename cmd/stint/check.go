package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/runner"
)

// CheckCmd reports what this host offers stint: the storage drivers that
// work (and why the others don't) and what LXC needs, like lxc-checkconfig.
type CheckCmd struct {
	Path     string `help:"Storage pool directory to probe (default ROOT/storage)." type:"path"`
	Loop     bool   `help:"Probe btrfs as a loop-file pool (the [storage] size option)."`
	Dataset  string `help:"ZFS dataset to probe (zfs driver)."`
	VG       string `name:"vg" help:"LVM volume group to probe (lvm driver)."`
	Thinpool string `help:"LVM thin pool to probe (lvm driver)."`
}

// Check statuses.
const (
	checkOK   = "ok"
	checkWarn = "warn" // works, but something is off
	checkFail = "fail" // stint cannot run containers without it
)

// checkItem is one line of the report.
type checkItem struct {
	Group  string `json:"group"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// checkReport is `stint check --json`.
type checkReport struct {
	OK      bool                  `json:"ok"` // nothing required is missing
	Checks  []checkItem           `json:"checks"`
	Auto    string                `json:"storage_auto"` // the driver "auto" picks here
	Storage []runner.StorageProbe `json:"storage"`
	// Network lists what on this host will drop bridged containers'
	// traffic, each with its fix; never null.
	Network []runner.NetWarning `json:"network_warnings"`
}

// Run probes the host and prints the report; exit 3 if something required
// is missing.
func (c *CheckCmd) Run(g *Globals) error {
	ctx := context.Background()
	r := checkReport{OK: true}
	add := func(group, name, status, detail string) {
		r.Checks = append(r.Checks, checkItem{group, name, status, detail})
		if status == checkFail {
			r.OK = false
		}
	}
	checkLXC(add)
	checkNamespaces(add)
	checkCgroups(add)
	checkIDMap(add)
	hc := runner.Check(ctx, g.Root, runner.CheckOptions{Path: c.Path, Loop: c.Loop, Dataset: c.Dataset, VG: c.VG, Thinpool: c.Thinpool})
	r.Storage, r.Auto, r.Network = hc.Storage, hc.Auto, hc.Network

	if g.JSON {
		if err := writeJSON(g.Stdout, r); err != nil {
			return err
		}
	} else if err := printCheck(g, r, hc.Pool); err != nil {
		return err
	}
	if !r.OK {
		return withCode(ExitHost, errors.New("stint check: something required is missing (see above)"))
	}
	return nil
}

func printCheck(g *Globals, r checkReport, pool string) error {
	w := g.Stdout
	group := ""
	for _, c := range r.Checks {
		if c.Group != group {
			group = c.Group
			fmt.Fprintln(w, group)
		}
		line := fmt.Sprintf("  %-5s %s", c.Status, c.Name)
		if c.Detail != "" {
			line += ": " + c.Detail
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "storage (pool %s; auto picks %s)\n", pool, r.Auto)
	for _, p := range r.Storage {
		if p.OK {
			fmt.Fprintf(w, "  %-5s %s\n", checkOK, p.Driver)
		} else {
			fmt.Fprintf(w, "  %-5s %s: %s\n", "no", p.Driver, p.Reason)
		}
	}
	fmt.Fprintln(w, "network (bridge mode)")
	if len(r.Network) == 0 {
		fmt.Fprintf(w, "  %-5s firewall: nothing drops bridged traffic\n", checkOK)
	}
	for _, nw := range r.Network {
		fmt.Fprintf(w, "  %-5s %s: %s\n        fix: %s\n", checkWarn, nw.Code, nw.Message, nw.Fix)
	}
	_, err := fmt.Fprintf(w, "result: %s\n", map[bool]string{true: "ok", false: "something required is missing"}[r.OK])
	return err
}

type addFunc func(group, name, status, detail string)

func checkLXC(add addFunc) {
	const grp = "lxc"
	add(grp, "liblxc", checkOK, runner.LXCVersion())
	for _, tool := range []string{"lxc-start"} {
		if p, err := exec.LookPath(tool); err != nil {
			add(grp, tool, checkFail, "not found on PATH (Debian: apt-get install lxc)")
		} else {
			add(grp, tool, checkOK, p)
		}
	}
	// Root writes its containers' id maps itself; newuidmap/newgidmap matter
	// only to unprivileged users, so their absence is a warning.
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if p, err := exec.LookPath(tool); err != nil {
			add(grp, tool, checkWarn, "not found on PATH (Debian: apt-get install uidmap)")
		} else {
			add(grp, tool, checkOK, p)
		}
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		add(grp, "kernel", checkOK, unix.ByteSliceToString(u.Release[:]))
	}
}

func checkNamespaces(add addFunc) {
	const grp = "namespaces"
	for _, ns := range []string{"user", "pid", "net", "mnt", "uts", "ipc", "cgroup"} {
		status := checkFail
		detail := "missing: the kernel has no " + ns + " namespaces"
		if ns == "cgroup" {
			status = checkWarn // LXC works without, with a less private /proc/self/cgroup
		}
		if _, err := os.Stat("/proc/self/ns/" + ns); err == nil {
			status, detail = checkOK, ""
		}
		add(grp, ns, status, detail)
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		add(grp, "user.max_user_namespaces", checkFail, "0: user namespaces are disabled (sysctl user.max_user_namespaces)")
	}
}

func checkCgroups(add addFunc) {
	const grp = "cgroups"
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		add(grp, "hierarchy", checkFail, "/sys/fs/cgroup: "+err.Error())
		return
	}
	var have []string
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		add(grp, "hierarchy", checkOK, "v2 (unified)")
		b, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		have = strings.Fields(string(b))
	} else {
		mode := "v1"
		var u unix.Statfs_t
		if unix.Statfs("/sys/fs/cgroup/unified", &u) == nil && u.Type == unix.CGROUP2_SUPER_MAGIC {
			mode = "v1 (hybrid, with an empty v2 hierarchy at /sys/fs/cgroup/unified)"
		}
		add(grp, "hierarchy", checkOK, mode)
		have = v1Controllers()
	}
	slices.Sort(have)
	add(grp, "controllers", checkOK, strings.Join(have, " "))
	// Limits (memory, cpus, pids) need these.
	for _, c := range []string{"memory", "cpu", "pids"} {
		if !slices.Contains(have, c) {
			add(grp, c, checkFail, "controller not available: limits cannot be applied")
		}
	}
}

// v1Controllers lists the enabled v1 controllers that are mounted.
func v1Controllers() []string {
	b, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && !strings.HasPrefix(f[0], "#") && f[1] != "0" && f[3] == "1" {
			out = append(out, f[0])
		}
	}
	return out
}

func checkIDMap(add addFunc) {
	const grp = "idmap"
	detail, err := runner.CheckIDMap()
	if err != nil {
		// stint adds root's range itself on first use.
		add(grp, "root subuid/subgid", checkWarn, err.Error())
		return
	}
	add(grp, "root subuid/subgid", checkOK, detail)
	// host_user maps through a hole in the id map, not idmapped mounts
	// (docs/devenv.md): this is for the day a spec asks for them.
	if detail, err := runner.CheckIdmappedMounts(); err != nil {
		add(grp, "idmapped mounts", checkWarn, err.Error())
	} else {
		add(grp, "idmapped mounts", checkOK, detail)
	}
}
