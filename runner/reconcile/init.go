package reconcile

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/stintdev/stint/spec"
)

// Where lxcrt bind-mounts its static helpers into every container
// (runner/lxcrt/config.go): init.lxc, the reaping PID 1 lxc-execute uses,
// and busybox. The runtime's own PID 1 (sleep, for jobs) is replaced for
// long-lived containers through the last-wins raw keys below.
const (
	helperInit    = "/.stint/init"
	helperBusybox = "/.stint/busybox"
	// InitScriptTarget is where a long-lived container's start script is
	// bind-mounted (read-only) inside it.
	InitScriptTarget = "/.stint/run"
	defaultPath      = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// InitScript is the shell script that becomes long-lived container c's
// program: it execs c.Command (or the image's /sbin/init) with c.Env. A
// script, because lxc.init.cmd is split on spaces with no quoting, so an
// argument like "daemon off;" cannot be written there.
func InitScript(c spec.Container) (string, error) {
	env := maps.Clone(c.Env)
	if env == nil {
		env = map[string]string{}
	}
	env["PATH"] = cmp.Or(env["PATH"], defaultPath)
	argv := []string{helperBusybox, "env"}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		argv = append(argv, k+"="+env[k])
	}
	if len(c.Command) > 0 {
		argv = append(argv, c.Command...)
	} else {
		argv = append(argv, "/sbin/init")
	}
	for _, a := range argv {
		if strings.ContainsRune(a, 0) {
			return "", fmt.Errorf("container %s: command or env has a NUL byte", c.Name)
		}
	}
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = shellQuote(a)
	}
	return "# written by stint: the program of long-lived container " + c.Name + "\nexec " +
		strings.Join(words, " ") + "\n", nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// InitKeys returns the raw LXC keys of long-lived container c's PID 1 and
// console, given InitScript bind-mounted at InitScriptTarget:
//
//   - with a command: init.lxc as PID 1 (it reaps orphans and forwards
//     signals, as under lxc-execute), running the script;
//   - without: the script itself as PID 1, which execs the image's
//     /sbin/init, so that init stays PID 1;
//   - the console (PID 1's stdout and stderr) logged to consoleLog.
//
// They are raw keys because the Runtime interface has no notion of a
// booted init (a job's container only needs namespaces to exec into).
func InitKeys(c spec.Container, consoleLog string) map[string]string {
	cmd := helperBusybox + " sh " + InitScriptTarget
	if len(c.Command) > 0 {
		cmd = helperInit + " --name " + c.Name + " --quiet -- " + cmd
	}
	return map[string]string{
		"lxc.init.cmd": cmd,
		// An empty value resets lxcrt's "none": LXC's own pty console,
		// whose output the monitor writes to the log file.
		"lxc.console.path":    "",
		"lxc.console.logfile": consoleLog,
	}
}
