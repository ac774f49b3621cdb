package main

import (
	"io"
	"os"

	"golang.org/x/term"
)

// writerOnly hides that a writer is an *os.File, so that os/exec gives the
// command a pipe and copies, instead of handing it our descriptor.
type writerOnly struct{ io.Writer }

// shieldTerminals returns the streams for a command run without a pty of
// its own: any of ours that is a terminal is replaced by a pipe stint
// copies, because a process holding a terminal descriptor can push input
// into it (TIOCSTI) for the shell that started stint. done releases what
// it made once the command has finished.
func shieldTerminals(stdin, stdout, stderr *os.File) (in io.Reader, out, errw io.Writer, done func(), err error) {
	in, out, errw, done = stdin, stdout, stderr, func() {}
	if term.IsTerminal(int(stdout.Fd())) {
		out = writerOnly{stdout}
	}
	if term.IsTerminal(int(stderr.Fd())) {
		errw = writerOnly{stderr}
	}
	if term.IsTerminal(int(stdin.Fd())) {
		// A pipe of our own, fed from the terminal. Not a plain io.Reader:
		// os/exec would wait for its copier, which blocks on the terminal
		// until the user types. This copier simply dies with stint.
		r, w, perr := os.Pipe()
		if perr != nil {
			return nil, nil, nil, nil, perr
		}
		go func() {
			_, _ = io.Copy(w, stdin)
			w.Close()
		}()
		in = r
		done = func() { r.Close() }
	}
	return in, out, errw, done, nil
}
