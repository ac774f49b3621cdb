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

// leftDir holds a marker file per container of this LXC path whose
// cgroups a removal had to leave (busy): the names gc retries. Only names
// recorded here are ever swept, so a gc never walks the host's cgroup
// hierarchies nor touches another stint root's containers (issue 18: two
// roots on one host removed each other's cgroups). A dot directory: not a
// container name (validName), not listed by List.
func (r *Runtime) leftDir() string { return filepath.Join(r.lxcpath, ".cgroups-left") }

// CgroupNames returns the names of this runtime's containers whose LXC
// cgroups a RemoveCgroups left behind (busy at the time).
func (r *Runtime) CgroupNames() ([]string, error) {
	entries, err := os.ReadDir(r.leftDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cgroups left in %s: %w", r.lxcpath, err)
	}
	var names []string
	for _, e := range entries {
		if validName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// containerCgroups returns the LXC cgroup directories of container name
// that exist now, in every hierarchy.
func containerCgroups(name string) ([]string, error) {
	bases, err := cgroupBases()
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, b := range bases {
		for _, p := range cgroupPrefixes {
			d := filepath.Join(b, p+name)
			if _, err := os.Lstat(d); err == nil {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs, nil
}

// RemoveCgroups removes the empty LXC cgroups of container name, deepest
// first, in every hierarchy. Only empty cgroups can go (the kernel refuses
// one with processes: EBUSY, returned wrapped); nothing is killed. Missing
// ones are fine. A name whose cgroups stay is recorded for CgroupNames
// (gc retries it); one whose cgroups are all gone is forgotten.
func (r *Runtime) RemoveCgroups(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	dirs, err := containerCgroups(name)
	if err != nil {
		return err
	}
	marker := filepath.Join(r.leftDir(), name)
	if len(dirs) == 0 {
		// The usual case: LXC removed them when the container stopped.
		// No lock then: starts never wait for a teardown that has nothing
		// to remove.
		return forget(marker)
	}
	// Not while a container starts: its cgroups are empty for a moment
	// (another root may start a container of the same name).
	unlock, err := hostLock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	var errs []error
	for _, d := range dirs {
		if err := rmdirTree(d); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return errors.Join(err, r.remember(name))
	}
	return forget(marker)
}

// remember records that container name's cgroups are left (CgroupNames).
func (r *Runtime) remember(name string) error {
	err := os.MkdirAll(r.leftDir(), 0o700)
	if err == nil {
		err = os.WriteFile(filepath.Join(r.leftDir(), name), nil, 0o600)
	}
	if err != nil {
		return fmt.Errorf("record cgroups left of container %s: %w", name, err)
	}
	return nil
}

// forget removes marker, if there.
func forget(marker string) error {
	if err := os.Remove(marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("forget cgroups left: %w", err)
	}
	return nil
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
