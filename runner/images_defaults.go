package runner

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/stintdev/stint/runner/state"
)

// ImageDefaults are what an image asks of a job's process when the spec
// does not say: an OCI image config's Env, WorkingDir and User (Docker's
// `docker run` defaults). Entrypoint and Cmd are not among them: a job
// runs its own lines.
type ImageDefaults struct {
	Env     []string // KEY=VALUE, under the spec's env
	Workdir string   // the job's working directory unless the spec sets one
	// User is the job's user unless the spec sets one: a name or uid,
	// optionally ":group" (a name or gid).
	User string
}

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
