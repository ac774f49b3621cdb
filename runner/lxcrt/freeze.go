package lxcrt

import (
	"fmt"
	"path/filepath"

	lxc "github.com/lxc/go-lxc"

	"github.com/stintdev/stint/internal/freezer"
	"github.com/stintdev/stint/runner/container"
)

// payloadPrefix names the cgroup LXC makes for a container's processes
// (its monitor's is lxc.monitor.<name>).
const payloadPrefix = "lxc.payload."

// freezer returns the freezer of container name's payload cgroup. It is
// found from the cgroup the container's init is in, cut at
// lxc.payload.<name>: the container's root may move processes, init
// included, into child cgroups of its own, and freezing the payload cgroup
// freezes those too.
func (r *Runtime) freezer(name string) (*freezer.Freezer, error) {
	c, err := lxc.NewContainer(name, r.lxcpath)
	if err != nil {
		return nil, err
	}
	defer lxc.Release(c)
	pid := c.InitPid()
	if pid <= 0 {
		return nil, container.ErrNotRunning
	}
	dir, err := freezer.CgroupDir(pid)
	if err != nil {
		return nil, err
	}
	if dir, err = payloadCgroup(dir, name); err != nil {
		return nil, err
	}
	return freezer.New(dir)
}

// payloadCgroup returns dir itself or the ancestor of it that is container
// name's payload cgroup.
func payloadCgroup(dir, name string) (string, error) {
	for d := filepath.Clean(dir); d != "/" && d != "."; d = filepath.Dir(d) {
		if filepath.Base(d) == payloadPrefix+name {
			return d, nil
		}
	}
	return "", fmt.Errorf("cgroup %s is not in %s%s", dir, payloadPrefix, name)
}
