package runner

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
)

// ImageDefaults are what an image asks of a job's process when the spec
// does not say: an OCI image config's Env, WorkingDir and User (Docker's
// `docker run` defaults). A job runs its own lines; Command (Entrypoint
// and Cmd) is a long-lived container's PID 1 unless its spec sets one.
type ImageDefaults struct {
	Env     []string // KEY=VALUE, under the spec's env
	Workdir string   // the job's working directory unless the spec sets one
	// User is the job's user unless the spec sets one: a name or uid,
	// optionally ":group" (a name or gid).
	User string
	// Command is the config's Entrypoint followed by its Cmd.
	Command []string
	// OCI means the image came from an OCI registry or layout: it has no
	// init of its own to boot unless its files carry one.
	OCI bool
}

// ErrNoCommand means a long-lived container has nothing to run: its spec
// sets no command, its OCI image's config has no Entrypoint or Cmd, and
// the image has no /sbin/init to boot.
var ErrNoCommand = errors.New("nothing to run: no command in the spec, no Entrypoint or Cmd in the image's config and no /sbin/init in the image")

// apply gives a job's or exec's request the image's defaults where the
// spec left them unset: the image's env under the spec's own (a spec key
// wins), its working directory and its user. A long-lived container's
// request is left alone (its init has its own env and user).
func (d ImageDefaults) apply(req Request) Request {
	if req.Kind == state.KindContainer {
		return req
	}
	if len(d.Env) > 0 {
		env := make(map[string]string, len(d.Env)+len(req.Env))
		for _, kv := range d.Env {
			if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
				env[k] = v
			}
		}
		maps.Copy(env, req.Env)
		req.Env = env
	}
	if req.Workdir == "" {
		req.Workdir = d.Workdir
	}
	if req.User == "" && d.User != "" && !req.HostUser {
		req.User, req.Group, _ = strings.Cut(d.User, ":")
	}
	return req
}

// applyInit gives long-lived container req's PID 1 the image's defaults:
// the image's env under the spec's (a spec key wins) and, when the spec
// sets no command, the image's Entrypoint and Cmd instead of booting the
// image's init. An OCI image with neither a command nor a /sbin/init under
// rootfs is ErrNoCommand (a usage error: the spec must say what to run).
// The working directory and user are applyInitUser's.
func (d ImageDefaults) applyInit(req *Request, rootfs string) error {
	if len(d.Env) > 0 {
		env := map[string]string{}
		for _, kv := range slices.Concat(d.Env, req.Init.Env) { // later wins
			if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
				env[k] = v
			}
		}
		req.Init.Env = req.Init.Env[:0:0]
		for _, k := range slices.Sorted(maps.Keys(env)) {
			req.Init.Env = append(req.Init.Env, k+"="+env[k])
		}
	}
	if req.Init.Kinded() != container.InitBoot {
		return nil
	}
	switch {
	case len(d.Command) > 0:
		req.Init.Kind, req.Init.Command = container.InitCommand, slices.Clone(d.Command)
	case d.OCI && !hasInit(rootfs):
		return &UsageError{Err: fmt.Errorf("container %s: image %s: %w", req.Container, req.Image, ErrNoCommand)}
	}
	return nil
}

// applyInitUser gives long-lived container c's command (InitCommand, the
// spec's or the image's) the image's working directory and user, as a
// job's lines get them, unless the spec sets its own workdir, user or
// host_user: then PID 1 stays root in / (the spec's are `stint shell`'s).
// The user is looked up in rootfs (a name not in /etc/passwd is an error
// naming it); HOME becomes the user's unless the env sets it. A booted
// init always runs as root in /.
func (d ImageDefaults) applyInitUser(req *Request, rootfs string, c spec.Container) error {
	if req.Init.Kinded() != container.InitCommand {
		return nil
	}
	if d.Workdir != "" && c.Workdir == "" {
		req.Init.Workdir = path.Join("/", d.Workdir)
	}
	if d.User == "" || c.User != "" || c.HostUser {
		return nil
	}
	name, group, _ := strings.Cut(d.User, ":")
	u, err := lookupUserGroup(rootfs, name, group)
	if err != nil {
		return fmt.Errorf("container %s: image %s: %w", req.Container, req.Image, err)
	}
	req.Init.UID, req.Init.GID = uint32(u.UID), uint32(u.GID)
	if !slices.ContainsFunc(req.Init.Env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") }) {
		req.Init.Env = append(req.Init.Env, "HOME="+cmp.Or(u.Home, "/"))
		slices.Sort(req.Init.Env)
	}
	return nil
}

// lookupUserGroup is LookupUser of name with group (withGroup) as its
// primary group.
func lookupUserGroup(rootfs, name, group string) (User, error) {
	u, err := LookupUser(rootfs, name)
	if err != nil {
		return User{}, err
	}
	return withGroup(rootfs, u, group)
}

// withGroup makes group (a name in the container's /etc/group, or a gid;
// "" keeps u's own) u's primary group.
func withGroup(rootfs string, u User, group string) (User, error) {
	if group == "" {
		return u, nil
	}
	if gid, err := strconv.Atoi(group); err == nil && gid >= 0 {
		u.GID = gid
		return u, nil
	}
	p, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return u, fmt.Errorf("group %s: %w", group, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return u, fmt.Errorf("group %s: %w", group, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ":")
		if len(fs) >= 3 && fs[0] == group {
			gid, err := strconv.Atoi(fs[2])
			if err != nil {
				break
			}
			u.GID = gid
			return u, nil
		}
	}
	return u, fmt.Errorf("group %s: not in the container's /etc/group", group)
}
