package lxcrt

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where the host mounts its cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// LXC puts a container's monitor and its payload (the container's
// processes) in cgroups named after the container. It removes them when
// the container stops, but not always after a failed start or when the
// monitor is killed: empty directories are left in every hierarchy.
var cgroupPrefixes = []string{"lxc.monitor.", "lxc.payload."}

// cgroupBases lists the directories LXC makes a container's cgroups in:
// in every hierarchy, its root and the calling process's own cgroup there
// (LXC nests under the cgroup of the process that starts it).
func cgroupBases() ([]string, error) {
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	var out []string
	add := func(p string) {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		// A pure cgroup2 host: one hierarchy, at the root.
		add(cgroupRoot)
		add(filepath.Join(cgroupRoot, own[""]))
		return out, nil
	}
	entries, err := os.ReadDir(cgroupRoot)
	if err != nil {
		return nil, fmt.Errorf("list cgroup hierarchies: %w", err)
	}
	for _, e := range entries {
		h := filepath.Join(cgroupRoot, e.Name())
		add(h)
		key := e.Name()
		switch key {
		case "unified":
			key = ""
		case "systemd":
			key = "name=systemd"
		}
		if p, ok := own[key]; ok {
			add(filepath.Join(h, p))
		}
	}
	return out, nil
}

// ownCgroups maps each controller of /proc/self/cgroup ("" for cgroup2)
// to this process's cgroup path in its hierarchy.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("own cgroups: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, sc.Err()
}

// CgroupNames returns the names of the containers that have an LXC
// cgroup (monitor or payload) in some hierarchy.
func (r *Runtime) CgroupNames() ([]string, error) {
	bases, err := cgroupBases()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, b := range bases {
		entries, err := os.ReadDir(b)
		if err != nil {
			continue // gone meanwhile
		}
		for _, e := range entries {
			for _, p := range cgroupPrefixes {
				if n, ok := strings.CutPrefix(e.Name(), p); ok && e.IsDir() && !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// RemoveCgroups removes the empty LXC cgroups of container name, deepest
// first, in every hierarchy. Only empty cgroups can go (the kernel refuses
// one with processes: EBUSY, returned wrapped); nothing is killed. Missing
// ones are fine.
func (r *Runtime) RemoveCgroups(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	// Not while a container starts: its cgroups are empty for a moment.
	unlock, err := hostLock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	bases, err := cgroupBases()
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range bases {
		for _, p := range cgroupPrefixes {
			if err := rmdirTree(filepath.Join(b, p+name)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// rmdirTree removes cgroup directory dir and its child cgroups, deepest
// first, with rmdir only: a cgroup's files are the kernel's and go with it.
func rmdirTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- { // WalkDir lists parents first
		if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove cgroup %s: %w", dirs[i], err)
		}
	}
	return nil
}
