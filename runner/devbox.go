package runner

// A dev box's parts of provisioning (issue 17, docs/devenv.md): the
// invoking user given to a container (host_user), their uid and gid mapped
// 1:1 through a hole in the id map, a home kept in a volume of the set
// (home = "persist"), a directory for `stint shell`'s SSH agent sockets
// (ssh_agent).

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"

	"github.com/stintdev/stint/internal/hostuser"
	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/spec"
)

// AgentTarget is where a container with ssh_agent finds its directory of
// agent sockets: below /.stint, as a booted init mounts a tmpfs over /run.
const AgentTarget = "/.stint/agent"

// HostUserFunc says who the invoking user is (hostuser.Invoking with the
// CLI's environment and the spec set's directory).
type HostUserFunc func() (hostuser.User, error)

// devbox is what a request's host user brings.
type devbox struct {
	user     hostuser.User
	homeVol  string // home = "persist": the volume bound at user.Home
	agentDir string // ssh_agent: bound at AgentTarget
}

// hostUserFor resolves the invoking user for a request that wants one, and
// checks the hole before anything is made.
func (r *Runner) hostUserFor(privileged bool) (*hostuser.User, error) {
	if r.HostUser == nil {
		return nil, errors.New("host_user: the invoking user is unknown here")
	}
	u, err := r.HostUser()
	if err != nil {
		return nil, fmt.Errorf("host_user: %w", err)
	}
	if !privileged {
		if _, err := r.IDMap.WithHole(u.UID, u.GID); err != nil {
			return nil, fmt.Errorf("host_user %s: %w", u.Name, err)
		}
	}
	return &u, nil
}

// resolveDev gives a request that wants the host user (a job's host_user)
// its Dev.
func (r *Runner) resolveDev(req *Request) error {
	if !req.HostUser || req.Dev != nil {
		return nil
	}
	u, err := r.hostUserFor(req.Privileged)
	if err != nil {
		return err
	}
	req.Dev = &devbox{user: *u}
	return nil
}

// giveHostUser writes req's host user into the clone at rootfs (passwd,
// group, shadow; their home unless a volume holds it) and reserves their
// ids for root in /etc/subuid and /etc/subgid (newuidmap wants that when
// liblxc uses it). Idempotent: a long-lived container gets it at every
// start.
func (r *Runner) giveHostUser(req Request, rootfs string) error {
	if req.Dev == nil {
		return nil
	}
	u := req.Dev.user
	if !req.Privileged {
		if err := idmap.Reserve("/etc/subuid", "/etc/subgid", u.UID, u.GID); err != nil {
			return fmt.Errorf("host_user %s: %w", u.Name, err)
		}
	}
	if _, err := hostuser.AddTo(rootfs, u); err != nil {
		return err
	}
	if req.Dev.homeVol == "" {
		if _, err := hostuser.MakeHome(rootfs, u); err != nil {
			return err
		}
	}
	return nil
}

// devConfig adds req's host user to a runtime config: the hole, the home
// volume and the agent directory.
func devConfig(cfg *container.Config, req Request) {
	if req.Dev == nil {
		return
	}
	u := req.Dev.user
	if cfg.IDMap != nil {
		cfg.IDMap.Hole = &container.IDHole{UID: u.UID, GID: u.GID}
	}
	if req.Dev.homeVol != "" {
		cfg.Mounts = append(cfg.Mounts, container.Mount{Type: container.MountBind, Source: req.Dev.homeVol, Target: u.Home})
	}
	if req.Dev.agentDir != "" {
		cfg.Mounts = append(cfg.Mounts, container.Mount{Type: container.MountBind, Source: req.Dev.agentDir, Target: AgentTarget})
	}
}

// userDir makes dir (and its parents, root's 0755) owned by u with mode
// 0700, unless it exists; an existing one must be a directory of u's.
func userDir(dir string, u hostuser.User) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err == nil {
		return os.Lchown(dir, int(u.UID), int(u.GID))
	} else if !errors.Is(err, os.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	return nil
}

// devFor prepares container c's dev box parts for runtime name rtName of
// set: the host user (recorded at creation in stored, read back at later
// starts: a watch under systemd has no sudo user), the home volume and the
// agent directory.
func (b *LongLived) devFor(set string, c spec.Container, rtName string, create bool) (*devbox, error) {
	if !c.HostUser {
		return nil, nil
	}
	r := b.Runner
	var u hostuser.User
	path := b.userPath(rtName)
	if data, err := os.ReadFile(path); err == nil && !create {
		if err := json.Unmarshal(data, &u); err != nil {
			return nil, fmt.Errorf("container %s: stored host user: %w", rtName, err)
		}
	} else {
		up, err := r.hostUserFor(c.Privileged)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", rtName, err)
		}
		u = *up
		data, _ := json.MarshalIndent(u, "", "  ")
		if err := renameio.WriteFile(path, append(data, '\n'), 0o600); err != nil {
			return nil, fmt.Errorf("container %s: store host user: %w", rtName, err)
		}
	}
	d := &devbox{user: u}
	if c.Home == spec.HomePersist {
		d.homeVol = filepath.Join(r.VolumeDir, set, "home-"+u.Name)
		if err := userDir(d.homeVol, u); err != nil {
			return nil, fmt.Errorf("container %s: home volume: %w", rtName, err)
		}
	}
	if c.SSHAgent {
		d.agentDir = filepath.Join(r.AgentDir, rtName)
		if err := userDir(d.agentDir, u); err != nil {
			return nil, fmt.Errorf("container %s: agent directory: %w", rtName, err)
		}
	}
	return d, nil
}

// userPath keeps the host user devFor chose for container rtName.
func (b *LongLived) userPath(rtName string) string {
	return filepath.Join(b.SpecDir, rtName+".user.json")
}

// RemoveVolumes removes set's volumes (the persisted homes): `down
// --volumes`.
func (b *LongLived) RemoveVolumes(set string) error {
	if b.Runner.VolumeDir == "" || set == "" || set == "." || set == ".." {
		return nil
	}
	if err := os.RemoveAll(filepath.Join(b.Runner.VolumeDir, set)); err != nil {
		return fmt.Errorf("volumes of set %s: %w", set, err)
	}
	return nil
}

// hostUser is the invoking user: sudo's, else the owner of the spec set's
// directory (hostuser.Invoking).
func (h *Host) hostUser() (hostuser.User, error) {
	o := hostuser.Options{Getenv: h.opts.Getenv}
	if s := h.opts.Set; s != nil && len(s.Files) > 0 {
		o.SpecDir = filepath.Dir(s.Files[0])
	}
	return hostuser.Invoking(o)
}
