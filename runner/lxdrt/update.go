package lxdrt

import (
	"context"
	"io"
	"maps"
	"net/http"
	"strings"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"

	"github.com/stintdev/stint/runner/container"
)

// Reconfig is an in-place change of one of stint's instances, stopped or
// running (a long-lived container's update: its tags, limits and env).
type Reconfig struct {
	// Tags are set as user.stint.<key> config keys; an empty value
	// removes the key. The owner, name and ro-binds keys are refused.
	Tags map[string]string
	// Limits, when non-nil, replace the limits stint renders (LXD
	// applies them to a running instance at once).
	Limits *container.Limits
	// Env, when non-nil, replaces the environment.* keys (KEY=VALUE
	// each): PID 1 sees them from the instance's next start.
	Env []string
}

// limitKeys are the config keys renderLimits writes.
var limitKeys = []string{"limits.memory", "limits.cpu", "limits.cpu.allowance", "limits.processes"}

// Reconfigure applies u to the instance behind name in one update.
func (r *Runtime) Reconfigure(ctx context.Context, name string, u Reconfig) error {
	inst, etag, err := r.instance(name)
	if err != nil {
		return err
	}
	if inst == nil {
		return r.fail(name, "reconfigure", container.ErrNotFound)
	}
	put := inst.Writable()
	cfg := maps.Clone(put.Config)
	for k, v := range u.Tags {
		if !tagRE.MatchString(k) || k == "owner" || k == "name" || k == "ro-binds" {
			return r.unsupported(name, "tag %q", k)
		}
		if v == "" {
			delete(cfg, keyPrefix+k)
		} else {
			cfg[keyPrefix+k] = v
		}
	}
	if u.Limits != nil {
		for _, k := range limitKeys {
			delete(cfg, k)
		}
		renderLimits(cfg, *u.Limits)
	}
	if u.Env != nil {
		for k := range cfg {
			if strings.HasPrefix(k, "environment.") {
				delete(cfg, k)
			}
		}
		for _, kv := range u.Env {
			k, v, _ := strings.Cut(kv, "=")
			cfg["environment."+k] = v
		}
	}
	put.Config = cfg
	op, err := r.c.UpdateInstance(inst.Name, put, etag)
	if err == nil {
		err = op.WaitContext(ctx)
	}
	return r.fail(name, "reconfigure", err)
}

// ConsoleLog returns the last n lines of the instance's console log (its
// PID 1's output as LXD keeps it), "" when there is none: only what
// was written since the last read (see Console).
func (r *Runtime) ConsoleLog(ctx context.Context, name string, n int) (string, error) {
	b, _, err := r.Console(ctx, name, 1<<20)
	if err != nil || b == nil {
		return "", err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n")), nil
}

// Console returns the instance's console output as LXD hands it out (its
// first max bytes): what PID 1 wrote since the previous read by anyone
// (stint, `lxc console --show-log`): LXD 5.0 passes the console's ring
// buffer on once, and what was left unread when the instance stopped
// stays readable until it starts again. running says whether it runs.
// No such instance is nil, no error.
func (r *Runtime) Console(ctx context.Context, name string, max int64) (b []byte, running bool, err error) {
	inst, _, err := r.instance(name)
	if err != nil || inst == nil {
		return nil, false, err
	}
	running = inst.StatusCode == api.Running
	rc, err := r.c.GetInstanceConsoleLog(inst.Name, &lxd.InstanceConsoleLogArgs{})
	if running && (notFound(err) || api.StatusErrorCheck(err, http.StatusInternalServerError)) {
		// Nothing new: LXD 5.0.2 answers an empty ring buffer with a
		// 500 ("open : no such file or directory"), which no type tells
		// from another failure of a running instance's console; a 404
		// is one deleted just now.
		return []byte{}, true, nil
	}
	if err != nil {
		return nil, false, r.fail(name, "console log", err)
	}
	defer rc.Close()
	b, err = io.ReadAll(io.LimitReader(rc, max))
	if err != nil {
		return nil, false, r.fail(name, "console log", err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, running, nil
}
