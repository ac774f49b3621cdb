package runner

import (
	"path"
	"strings"

	"github.com/stintdev/stint/internal/rootfs"
	"golang.org/x/sys/unix"
)

// pipefailProbe starts every run line of a job without a `shell` key. It
// turns pipefail on where the image's /bin/sh has it (busybox ash, bash,
// ksh, zsh) so that `make test | tee out` fails when make does, and is
// a no-op where it hasn't (dash 0.5.12, Debian 12's): `command` keeps a failing
// special builtin from exiting the shell (POSIX), and `|| :` gives the line
// a clean $?. It shares the line's first line, so the shell's line numbers
// in error messages stay the user's.
const pipefailProbe = "command set -o pipefail 2>/dev/null || :; "

// bashPipefail is the default shell of a job whose image's /bin/sh is
// dash (no pipefail) and which has bash, as GitLab Runner prefers bash
// where an image has it: `go test ./... | tee x` fails on Debian too.
const bashPipefail = "/bin/bash -o pipefail -c"

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

// defaultShell is the shell of a job without a `shell` key whose root is
// the local directory dir ("" for a runtime with its own storage): bash
// with pipefail when the image's /bin/sh is a link to dash and /bin/bash
// exists, else "" (lineArgv's /bin/sh with the probe). Paths are resolved
// inside dir, never following a link out of it.
func defaultShell(dir string) string {
	if dir == "" {
		return ""
	}
	root, err := rootfs.OpenRoot(dir)
	if err != nil {
		return ""
	}
	defer unix.Close(root)
	bin, err := rootfs.OpenIn(root, "/bin", unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(bin)
	buf := make([]byte, 256)
	n, err := unix.Readlinkat(bin, "sh", buf)
	if err != nil || path.Base(string(buf[:n])) != "dash" {
		return ""
	}
	fd, err := rootfs.OpenIn(root, "/bin/bash", unix.O_PATH, 0)
	if err != nil {
		return ""
	}
	unix.Close(fd)
	return bashPipefail
}
