package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A `stint run` whose reader went away (`stint run spec | head -1`, a
// closed log pipe) tears down as for SIGTERM: nobody is left to see the
// jobs' output or their result, so they are not left running either. stint
// never dies of SIGPIPE: the signal is caught (not ignored: SIG_IGN would be
// inherited by the containers' processes) and dropped, a write that fails
// with EPIPE stops all further printing to that stream and aborts the run,
// and a pipe on stdout whose reader closed is noticed even while the jobs
// print nothing.

// closedOutputAborts returns g with Stdout and Stderr that call abort once
// either meets a closed pipe, and drops SIGPIPE from now on.
func closedOutputAborts(ctx context.Context, g *Globals, abort func(reason string)) *Globals {
	// Never read: Notify drops what a full channel can't take.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	c := *g
	c.Stdout = &pipeGuard{w: g.Stdout, gone: func() { abort("stdout closed") }}
	c.Stderr = &pipeGuard{w: g.Stderr, gone: func() { abort("stderr closed") }}
	if f, ok := g.Stdout.(*os.File); ok {
		go watchReaderGone(ctx, f, c.Stdout.(*pipeGuard))
	}
	return &c
}

// pipeGuard passes writes to w until one fails with EPIPE; then it calls
// gone and swallows every later write.
type pipeGuard struct {
	w      io.Writer
	closed atomic.Bool
	gone   func()
}

func (p *pipeGuard) Write(b []byte) (int, error) {
	if p.closed.Load() {
		return len(b), nil
	}
	n, err := p.w.Write(b)
	if errors.Is(err, syscall.EPIPE) {
		p.markClosed()
		return len(b), nil
	}
	return n, err
}

func (p *pipeGuard) markClosed() {
	if !p.closed.Swap(true) {
		p.gone()
	}
}

// watchReaderGone polls f, when it is a pipe, for its reader closing
// (POLLERR on the write end) until ctx ends.
func watchReaderGone(ctx context.Context, f *os.File, p *pipeGuard) {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	var fd int32
	if rc.Control(func(raw uintptr) { fd = int32(raw) }) != nil {
		return
	}
	fds := []unix.PollFd{{Fd: fd}}
	for ctx.Err() == nil {
		n, err := unix.Poll(fds, int(time.Second/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
			p.markClosed()
			return
		}
	}
}
