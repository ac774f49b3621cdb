package runnertest

import (
	"path"
	"strconv"
	"strings"
)

// The ANSI colours of the runner's notices (helpers/ansi_colors.go).
const (
	ansiBoldGreen = "\033[32;1m"
	ansiReset     = "\033[0;m"
)

// ShellEscape quotes s as gitlab-runner's helpers.ShellEscape does: as is
// when it is made of "literal" characters only, otherwise ANSI-C quoted
// ($'…') with \xNN for control and non-ASCII bytes. $'…' is what busybox ash
// and bash accept and dash does not.
func ShellEscape(s string) string {
	if s == "" {
		return "''"
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	quote := false
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == ',', c == '-', c == '.', c == '/', c == '@', c == '_':
			b.WriteByte(c)
		case strings.IndexByte(" !\"#$%&()*+:;<=>?[]^`{|}~", c) >= 0:
			b.WriteByte(c)
			quote = true
		case strings.IndexByte("\a\b\t\n\v\f\r'\\", c) >= 0:
			b.WriteString(map[byte]string{'\a': `\a`, '\b': `\b`, '\t': `\t`, '\n': `\n`, '\v': `\v`,
				'\f': `\f`, '\r': `\r`, '\'': `\'`, '\\': `\\`}[c])
			quote = true
		default:
			b.Write([]byte{'\\', 'x', hex[c>>4], hex[c&0x0f]})
			quote = true
		}
	}
	if quote {
		return "$'" + b.String() + "'"
	}
	return b.String()
}

// writer builds a stage's script body the way shells.BashWriter does.
type writer struct {
	lines []string
	tmp   string // the build's temporary dir, <project dir>.tmp
}

func (w *writer) line(s string) { w.lines = append(w.lines, s) }

// command is BashWriter.Command: every word escaped.
func (w *writer) command(words ...string) {
	for i, s := range words {
		words[i] = ShellEscape(s)
	}
	w.line(strings.Join(words, " "))
}

// commandArgExpand is BashWriter.CommandArgExpand: arguments double-quoted.
func (w *writer) commandArgExpand(cmd string, args ...string) {
	for i, a := range args {
		args[i] = strconv.Quote(a)
	}
	w.line(strings.Join(append([]string{ShellEscape(cmd)}, args...), " "))
}

func (w *writer) notice(text string) { w.line("echo " + ShellEscape(ansiBoldGreen+text+ansiReset)) }

func (w *writer) tmpFile(name string) string { return path.Join(w.tmp, name) }

// exportVariables is AbstractShell.writeExports: every job variable, then
// GITLAB_ENV and the dotenv file it names.
func (w *writer) exportVariables(vars []Variable) {
	for _, v := range vars {
		if v.File {
			f := w.tmpFile(v.Key)
			w.line("mkdir -p " + strconv.Quote(w.tmp))
			w.line("printf '%s' " + ShellEscape(v.Value) + " > " + strconv.Quote(f))
			w.line("export " + ShellEscape(v.Key) + "=" + strconv.Quote(f))
			continue
		}
		w.line("export " + ShellEscape(v.Key) + "=" + ShellEscape(v.Value))
	}
	env := w.tmpFile("gitlab_runner_env")
	w.line("export GITLAB_ENV=" + ShellEscape(env))
	w.line("mkdir -p " + strconv.Quote(w.tmp))
	w.line("touch " + strconv.Quote(env))
	w.line(`while read -r line; do export "$line"; done < ` + strconv.Quote(env))
}

// commands is AbstractShell.writeCommands for one-line commands: a notice
// echoing "$ cmd", then the command.
func (w *writer) commands(cmds []string) {
	for _, c := range cmds {
		c = strings.TrimSpace(c)
		if c == "" {
			w.line("echo")
		} else {
			w.notice("$ " + c)
		}
		w.line(c)
	}
}

// finish is BashWriter.Finish: the #! line for the runner's shell, the TERM
// trap, pipefail when the shell has it, errexit, and the body eval'd in a
// subshell with stdin closed.
func (w *writer) finish(shell string) string {
	var b strings.Builder
	b.WriteString("#!/usr/bin/env " + shell + "\n\n")
	b.WriteString("trap 'exit 1' TERM\n\n")
	b.WriteString(`case "$(set -o)" in *"pipefail"*) set -o pipefail;; esac; set -o errexit` + "\n")
	b.WriteString("set +o noclobber\n")
	body := strings.Join(w.lines, "\n") + "\n"
	b.WriteString("(trap 'exit 1' TERM; eval " + ShellEscape(body) + ") < /dev/null\n")
	b.WriteString("exit 0\n")
	return b.String()
}

// stageScript generates the script of one stage of job; ok is false for a
// stage the runner would skip (nothing to do).
func (r *run) stageScript(stage string) (script string, ok bool) {
	w := &writer{tmp: r.projectDir + ".tmp"}
	vars := r.variables()
	switch stage {
	case "prepare_script":
		host := ""
		if r.cfg.Hostname != nil {
			host = " via " + *r.cfg.Hostname
		}
		w.line("echo " + strconv.Quote("Running on $(hostname)"+host+"..."))
		w.commandArgExpand("rm", "-f", w.tmpFile("gitlab_runner_env"))
		w.commandArgExpand("rm", "-f", w.tmpFile("masking.db"))
	case "get_sources":
		w.exportVariables(vars)
		w.line("export GIT_TERMINAL_PROMPT=0")
		w.line("export GCM_INTERACTIVE=Never")
		w.notice("Skipping Git repository setup")
		w.command("mkdir", "-p", r.projectDir)
	case "restore_cache", "archive_cache", "archive_cache_on_failure":
		if !r.cacheStage(w, vars, stage) {
			return "", false
		}
	case "build_script":
		w.exportVariables(vars)
		w.command("cd", r.projectDir)
		w.commands(r.job.Script)
	case "after_script":
		if len(r.job.AfterScript) == 0 {
			return "", false
		}
		w.exportVariables(vars)
		w.command("cd", r.projectDir)
		w.notice("Running after script...")
		w.commands(r.job.AfterScript)
	case "cleanup_file_variables":
		w.exportVariables(vars)
		for _, f := range []string{"gitlab_runner_env", "masking.db", "git-template/config", ".gitlab-runner.ext.conf"} {
			w.commandArgExpand("rm", "-f", w.tmpFile(f))
		}
	default: // download_artifacts, upload_artifacts_*: nothing in a harness job
		return "", false
	}
	return w.finish(r.shell()), true
}

// cacheStage stands in for the runner's cache-extractor and cache-archiver
// (the runner binary, which a container does not have) with tar on the
// cache dir the driver's config named: same stages, same skip rules.
func (r *run) cacheStage(w *writer, vars []Variable, stage string) bool {
	c := r.job.Cache
	if c == nil || len(c.Paths) == 0 {
		return false
	}
	when := c.When
	if when == "" {
		when = "on_success"
	}
	switch {
	case stage == "archive_cache" && when == "on_failure", stage == "archive_cache_on_failure" && when == "on_success":
		return false
	}
	w.exportVariables(vars)
	w.command("cd", r.projectDir)
	archive := path.Join(r.cacheDir(), ShellSafeKey(c.Key)+".tar")
	if stage == "restore_cache" {
		w.notice("Checking cache for " + c.Key + "...")
		w.line("if [ -e " + strconv.Quote(archive) + " ]; then")
		w.command("tar", "-xf", archive)
		w.line("fi")
		return true
	}
	w.notice("Creating cache " + c.Key + "...")
	w.command("mkdir", "-p", path.Dir(archive))
	w.command(append([]string{"tar", "-cf", archive}, c.Paths...)...)
	return true
}

// ShellSafeKey is a cache key usable as a file name.
func ShellSafeKey(key string) string {
	if key == "" {
		return "default"
	}
	return strings.NewReplacer("/", "_", " ", "_").Replace(key)
}
