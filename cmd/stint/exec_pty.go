package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/stintdev/stint/runner"
)

// execPty is the caller's side of the terminal a command gets when stint
// runs on one (`stint exec`, `stint shell`). Never the caller's own
// terminal: a process holding it could type into the host's shell with
// TIOCSTI, or read what the user types after stint exits. The command gets
// the slave of a fresh pseudo-terminal, opened by the engine in the
// container's own devpts (so `tty` names it there), as its stdin, stdout,
// stderr and controlling terminal; stint copies bytes between the caller's
// terminal (in raw mode meanwhile) and the master, and forwards window size
// changes.
type execPty struct {
	master    *os.File
	in        *os.File // the caller's terminal (stdin)
	saved     *term.State
	winch     chan os.Signal
	copied    chan struct{} // the master's output is all copied
	closeOnce sync.Once
}

// attachPty starts copying between the caller's terminal (in, out) and
// master, gives the command's terminal (slave) the caller's modes and
// window size, and puts the caller's terminal in raw mode: from now on, its
// keys (Ctrl-C included) are bytes for the command's terminal to interpret.
// Close undoes it.
func attachPty(in, out, master, slave *os.File) (*execPty, error) {
	p := &execPty{master: master, in: in, winch: make(chan os.Signal, 1), copied: make(chan struct{})}
	if tio, err := unix.IoctlGetTermios(int(in.Fd()), unix.TCGETS); err == nil {
		_ = unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio)
	}
	p.resize()
	var err error
	p.saved, err = term.MakeRaw(int(in.Fd()))
	if err != nil {
		return nil, fmt.Errorf("raw mode on the terminal: %w", err)
	}
	signal.Notify(p.winch, syscall.SIGWINCH)
	go func() {
		for range p.winch {
			p.resize()
		}
	}()
	go func() { _, _ = io.Copy(master, in) }() // ends with the process
	go func() {
		// Ends with EIO once every holder of the slave closed it.
		_, _ = io.Copy(out, master)
		close(p.copied)
	}()
	return p, nil
}

// terminal is the runner's hook for attachPty: it gets the master the
// engine opened in the container and returns what ends the copying. A
// failure to attach leaves the command without input (it still runs).
func terminal(in, out *os.File, stderr io.Writer) runner.AttachFunc {
	return func(master, slave *os.File) func() {
		p, err := attachPty(in, out, master, slave)
		if err != nil {
			fmt.Fprintf(stderr, "stint: %v\n", err)
			return func() {}
		}
		return p.Close
	}
}

// resize gives the command's terminal the caller's window size.
func (p *execPty) resize() {
	if ws, err := unix.IoctlGetWinsize(int(p.in.Fd()), unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// Close waits a moment for the command's last output, then restores the
// caller's terminal. The command's slave must be closed by then.
func (p *execPty) Close() {
	p.closeOnce.Do(func() {
		select {
		case <-p.copied:
		case <-time.After(2 * time.Second):
			// A process that outlived the command holds the slave: don't
			// wait for it.
		}
		signal.Stop(p.winch)
		close(p.winch)
		_ = term.Restore(int(p.in.Fd()), p.saved)
	})
}
