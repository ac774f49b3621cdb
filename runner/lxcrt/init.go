package lxcrt

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/stintdev/stint/runner/container"
)

// How lxcrt renders a container's PID 1 (container.Init):
//
//   - InitMinimal (jobs): init.lxc reaping orphans, running busybox sleep
//     until Stop; work comes in through Exec.
//   - InitCommand: init.lxc (it reaps orphans and forwards signals, as
//     under lxc-execute) running a start script that execs the command.
//   - InitBoot: the start script itself as PID 1, exec'ing the image's
//     /sbin/init, so that init stays PID 1.
//
// A script, because lxc.init.cmd is split on spaces with no quoting, so an
// argument like "daemon off;" cannot be written there. It is written beside
// the container's directory (readable by the container's root only: it may
// carry env values) and bind-mounted read-only at InitScriptTarget.

// InitScriptTarget is where a container's start script is bind-mounted.
const InitScriptTarget = "/.stint/run"

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// initScriptPath is container name's start script on the host. A dot file
// in the LXC path: never taken for a container (List), searchable by the
// container's root, which LXC mounts it as.
func (r *Runtime) initScriptPath(name string) string {
	return filepath.Join(r.lxcpath, ".init-"+name+".sh")
}

// renderInit returns the lxc.init.cmd of init.
func renderInit(name string, init container.Init) ([]kv, error) {
	switch init.Kinded() {
	case container.InitMinimal:
		return []kv{{"lxc.init.cmd", initPath + " --name " + name + " --quiet -- " + busyboxPath + " sleep infinity"}}, nil
	case container.InitCommand:
		if len(init.Command) == 0 {
			return nil, fmt.Errorf("container %s: init command is empty", name)
		}
		lines := []kv{{"lxc.init.cmd", initPath + " --name " + name + " --quiet -- " + busyboxPath + " sh " + InitScriptTarget}}
		// The command's directory and ids (an OCI image's WorkingDir and
		// User): LXC switches to them before it execs init.lxc, which
		// needs no root to reap and forward signals.
		if init.Workdir != "" {
			lines = append(lines, kv{"lxc.init.cwd", init.Workdir})
		}
		if init.UID != 0 || init.GID != 0 {
			lines = append(lines, kv{"lxc.init.uid", strconv.FormatUint(uint64(init.UID), 10)},
				kv{"lxc.init.gid", strconv.FormatUint(uint64(init.GID), 10)})
		}
		return lines, nil
	case container.InitBoot:
		return []kv{{"lxc.init.cmd", busyboxPath + " sh " + InitScriptTarget}}, nil
	default:
		return nil, fmt.Errorf("container %s: init %q: %w", name, init.Kind, container.ErrUnsupported)
	}
}

// InitScript is the start script of a container whose Init is InitCommand
// or InitBoot: it execs the command (or /sbin/init) with init.Env, PATH
// defaulted. name is the container's name as its script says it.
func InitScript(name string, init container.Init) (string, error) {
	env := map[string]string{}
	for _, kv := range init.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	env["PATH"] = cmp.Or(env["PATH"], defaultPath)
	argv := []string{busyboxPath, "env"}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		argv = append(argv, k+"="+env[k])
	}
	if init.Kinded() == container.InitCommand {
		argv = append(argv, init.Command...)
	} else {
		argv = append(argv, "/sbin/init")
	}
	for _, a := range argv {
		if strings.ContainsRune(a, 0) {
			return "", fmt.Errorf("container %s: command or env has a NUL byte", name)
		}
	}
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = shellQuote(a)
	}
	return "# written by stint: the program of long-lived container " + name + "\nexec " +
		strings.Join(words, " ") + "\n", nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeInit writes the start script of container name when its Init needs
// one, and returns the mount that shows it inside (nil: none needed).
func (r *Runtime) writeInit(name string, cfg container.Config) (*container.Mount, error) {
	k := cfg.Init.Kinded()
	if k != container.InitCommand && k != container.InitBoot {
		return nil, nil
	}
	script, err := InitScript(cmp.Or(cfg.Hostname, name), cfg.Init)
	if err != nil {
		return nil, err
	}
	p := r.initScriptPath(name)
	f, err := renameio.NewPendingFile(p, renameio.WithPermissions(0o600))
	if err != nil {
		return nil, fmt.Errorf("start script of %s: %w", name, err)
	}
	defer f.Cleanup()
	if _, err := f.WriteString(script); err != nil {
		return nil, fmt.Errorf("start script of %s: %w", name, err)
	}
	// Owned by the user the script runs as (root, or the command's
	// user), as the container sees it: readable by that user only (it may
	// carry env values), and by the container's root.
	uid, gid, mapped, err := scriptOwner(cfg)
	if err != nil {
		return nil, fmt.Errorf("start script of %s: %w", name, err)
	}
	if mapped {
		if err := f.Chown(uid, gid); err != nil {
			return nil, fmt.Errorf("start script of %s: %w", name, err)
		}
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return nil, fmt.Errorf("start script of %s: %w", name, err)
	}
	return &container.Mount{Type: container.MountBind, Source: p, Target: InitScriptTarget, Readonly: true}, nil
}

// scriptOwner is the host uid and gid that the container sees as its
// start script's user (Init.UID and GID: root, or the command's user);
// mapped is false when that is the host's root (a privileged container's
// root: the file stays root's).
func scriptOwner(cfg container.Config) (uid, gid int, mapped bool, err error) {
	u, g := cfg.Init.UID, cfg.Init.GID
	if m := cfg.IDMap; !cfg.Privileged && m != nil {
		sm, err := shiftMap(*m)
		if err != nil {
			return 0, 0, false, err
		}
		var okU, okG bool
		if u, okU = sm.ShiftUID(u); okU {
			g, okG = sm.ShiftGID(g)
		}
		if !okU || !okG {
			return 0, 0, false, fmt.Errorf("user %d:%d is outside the container's id map", cfg.Init.UID, cfg.Init.GID)
		}
	}
	return int(u), int(g), u != 0 || g != 0, nil
}

// removeInit removes container name's start script; a missing one is fine.
func (r *Runtime) removeInit(name string) error {
	if err := os.Remove(r.initScriptPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("start script of %s: %w", name, err)
	}
	return nil
}
