package runner

import "strings"

// pipefailProbe starts every run line of a job without a `shell` key. It
// turns pipefail on where the image's /bin/sh has it (busybox ash, bash,
// ksh, zsh) so that `make test | tee out` fails when make does, and is
// a no-op where it hasn't (dash 0.5.12, Debian 12's): `command` keeps a failing
// special builtin from exiting the shell (POSIX), and `|| :` gives the line
// a clean $?. It shares the line's first line, so the shell's line numbers
// in error messages stay the user's.
const pipefailProbe = "command set -o pipefail 2>/dev/null || :; "

// lineArgv is the argv that runs one run line: the job's shell split at
// blanks with the line as one more argument ("bash -eo pipefail -c" →
// bash -eo pipefail -c LINE), or by default /bin/sh -c with pipefail where
// the shell supports it (detected by the shell itself, see pipefailProbe).
func lineArgv(shell, line string) []string {
	if f := strings.Fields(shell); len(f) > 0 {
		return append(f, line)
	}
	return []string{"/bin/sh", "-c", pipefailProbe + line}
}
