package lxdrt

import (
	"context"
	"os"
	"strconv"
	"time"

	lxd "github.com/canonical/lxd/client"
	"github.com/canonical/lxd/shared/api"
	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/stintdev/stint/internal/devpts"
	"github.com/stintdev/stint/runner/container"
)

var _ container.Terminaler = (*Runtime)(nil)

// OpenTerminal opens the terminal pair of a command run with a terminal:
// a pair on this host's /dev/ptmx (uid and gid do not apply). The command
// itself gets the terminal LXD opens in the instance (an interactive
// exec, so `tty` names one there); Exec, given the slave with TTY set,
// carries the bytes between the slave and that terminal, and the window
// size the caller gives the pair. The slave is put in raw mode then: the
// instance's terminal does the line discipline, once.
func (r *Runtime) OpenTerminal(ctx context.Context, name string, uid, gid int) (master, slave *os.File, err error) {
	inst, _, err := r.instance(name)
	if err != nil {
		return nil, nil, err
	}
	if inst == nil {
		return nil, nil, r.fail(name, "terminal", container.ErrNotFound)
	}
	p, err := devpts.OpenLocal()
	if err != nil {
		return nil, nil, r.fail(name, "terminal", err)
	}
	return p.Master, p.Slave, nil
}

// resizeEvery is how often an interactive exec looks for a new window
// size on its local terminal (the pair's slave has no process to signal).
const resizeEvery = 200 * time.Millisecond

// interactive makes req an interactive exec when opts asks for a terminal:
// the local slave (opts.Stdin) goes raw, its window size is the remote
// terminal's, and its changes follow while the command runs. The func
// returned ends the following.
func interactive(opts container.ExecOptions, req *api.InstanceExecPost, args *lxd.InstanceExecArgs) func() {
	if !opts.TTY {
		return func() {}
	}
	req.Interactive = true
	f, ok := opts.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	fd := int(f.Fd())
	_, _ = term.MakeRaw(fd)
	size := func() (int, int) {
		ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		if err != nil {
			return 0, 0
		}
		return int(ws.Col), int(ws.Row)
	}
	req.Width, req.Height = size()
	stop := make(chan struct{})
	args.Control = func(conn *websocket.Conn) {
		w0, h0 := req.Width, req.Height
		t := time.NewTicker(resizeEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			w, h := size()
			if w == 0 || (w == w0 && h == h0) {
				continue
			}
			w0, h0 = w, h
			msg := api.InstanceExecControl{Command: "window-resize",
				Args: map[string]string{"width": strconv.Itoa(w), "height": strconv.Itoa(h)}}
			if conn.WriteJSON(msg) != nil {
				return
			}
		}
	}
	return func() { close(stop) }
}
