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
)

// execPty is the terminal `stint exec` gives a command when it runs on one.
// Never the caller's own: a process holding the caller's terminal could
// type into the host's shell with TIOCSTI, or read what the user types
// after stint exits. The command gets the slave of a fresh pseudo-terminal
// as its stdin, stdout, stderr and controlling terminal; stint copies bytes
// between the caller's terminal (in raw mode meanwhile) and the master, and
// forwards window size changes.
type execPty struct {
	master, slave *os.File
	in            *os.File // the caller's terminal (stdin)
	saved         *term.State
	winch         chan os.Signal
	copied        chan struct{} // the master's output is all copied
	closeOnce     sync.Once
}

// openExecPty makes the pseudo-terminal, with the caller's terminal modes
// and size, and puts the caller's terminal in raw mode: from now on, its
// keys (Ctrl-C included) are bytes for the command's terminal to interpret.
func openExecPty(in, out *os.File) (*execPty, error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open a terminal for the command: %w", err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, fmt.Errorf("unlock the command's terminal: %w", err)
	}
	// The peer by descriptor, not by /dev/pts path: nothing can swap it.
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(mfd)
		return nil, fmt.Errorf("open the command's terminal: %w", errno)
	}
	p := &execPty{master: os.NewFile(uintptr(mfd), "ptmx"), slave: os.NewFile(sfd, "pts"), in: in,
		winch: make(chan os.Signal, 1), copied: make(chan struct{})}
	if tio, err := unix.IoctlGetTermios(int(in.Fd()), unix.TCGETS); err == nil {
		_ = unix.IoctlSetTermios(int(sfd), unix.TCSETS, tio)
	}
	p.resize()
	p.saved, err = term.MakeRaw(int(in.Fd()))
	if err != nil {
		p.master.Close()
		p.slave.Close()
		return nil, fmt.Errorf("raw mode on the terminal: %w", err)
	}
	signal.Notify(p.winch, syscall.SIGWINCH)
	go func() {
		for range p.winch {
			p.resize()
		}
	}()
	go func() { _, _ = io.Copy(p.master, in) }() // ends with the process
	go func() {
		// Ends with EIO once every holder of the slave closed it.
		_, _ = io.Copy(out, p.master)
		close(p.copied)
	}()
	return p, nil
}

// resize gives the command's terminal the caller's window size.
func (p *execPty) resize() {
	if ws, err := unix.IoctlGetWinsize(int(p.in.Fd()), unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// Close waits a moment for the command's last output, then restores the
// caller's terminal. The command (its container) must be gone by then.
func (p *execPty) Close() {
	p.closeOnce.Do(func() {
		p.slave.Close()
		select {
		case <-p.copied:
		case <-time.After(2 * time.Second):
			// A process that outlived the container's teardown holds the
			// slave: don't wait for it.
		}
		signal.Stop(p.winch)
		close(p.winch)
		_ = term.Restore(int(p.in.Fd()), p.saved)
		p.master.Close()
	})
}
