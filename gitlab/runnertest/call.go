package runnertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// ErrPipesLeaked is a call whose stdout or stderr stayed open after the
// driver process exited: something it started still holds them. The real
// runner waits for end of file on both, so it would hang there until the
// call's timeout.
var ErrPipesLeaked = errors.New("output pipes still open after the driver exited")

// ErrKillFailed is a call that survived SIGTERM and SIGKILL to its process
// group (process.KillProcessError in the runner), or whose pipes stayed open
// after them.
var ErrKillFailed = errors.New("driver call did not end after SIGTERM and SIGKILL")

// Call is one driver invocation as the harness saw it.
type Call struct {
	Name     string   // config | prepare | run | cleanup
	Stage    string   // for run
	Argv     []string // executable and arguments
	Env      []string
	Dir      string
	ExitCode int    // -1 when a signal ended it
	Signal   string // the signal that ended it, if any
	Killed   string // "" | "SIGTERM" | "SIGKILL": what the harness sent on timeout
	Stdout   string
	Stderr   string
	Duration time.Duration
	Err      error // ErrPipesLeaked, ErrKillFailed, or a start failure
}

// spawn is what a call needs besides its name: where its output goes and
// how long it may take.
type spawn struct {
	timeout        time.Duration // 0: the parent context only
	stdout, stderr io.Writer     // besides Call.Stdout/Stderr
}

// exec runs one call the way gitlab-runner's process package does: its own
// process group (Setpgid), output through pipes read to end of file, and on
// timeout SIGTERM to the group, then SIGKILL after the graceful timeout.
func (r *run) exec(ctx context.Context, c *Call, sp spawn) {
	if sp.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, sp.timeout)
		defer cancel()
	}
	start := time.Now()
	defer func() { c.Duration = time.Since(start) }()
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Dir, cmd.Env = c.Dir, c.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var outBuf, errBuf lockedBuffer
	readers, err := attachPipes(cmd, io.MultiWriter(&outBuf, orDiscard(sp.stdout)), io.MultiWriter(&errBuf, orDiscard(sp.stderr)))
	if err != nil {
		c.Err = err
		return
	}
	defer func() { c.Stdout, c.Stderr = outBuf.String(), errBuf.String() }()
	if err := cmd.Start(); err != nil {
		readers.abort()
		c.Err = fmt.Errorf("start %s: %w", c.Argv[0], err)
		c.ExitCode = -1
		return
	}
	readers.parentDone()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case <-exited:
		r.awaitEOF(c, readers)
	case <-ctx.Done():
		r.kill(c, cmd, exited, readers)
	}
	c.ExitCode = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		c.Signal = ws.Signal().String()
	}
}

// awaitEOF waits for end of file on both pipes after the process exited.
func (r *run) awaitEOF(c *Call, p *pipes) {
	select {
	case <-p.eof:
	case <-time.After(r.opts.EOFGrace):
		p.abort()
		c.Err = fmt.Errorf("%s: %w (%s later)", c.Name, ErrPipesLeaked, r.opts.EOFGrace)
	}
}

// kill is process.osKillWait.KillAndWait: SIGTERM to the process group,
// wait, SIGKILL, wait.
func (r *run) kill(c *Call, cmd *exec.Cmd, exited chan struct{}, p *pipes) {
	pgid := -cmd.Process.Pid
	done := func(d time.Duration) bool {
		deadline := time.After(d)
		select {
		case <-exited:
		case <-deadline:
			return false
		}
		select {
		case <-p.eof:
			return true
		case <-deadline:
			return false
		}
	}
	c.Killed = "SIGTERM"
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	if done(r.opts.GracefulKillTimeout) {
		return
	}
	c.Killed = "SIGKILL"
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	if done(r.opts.ForceKillTimeout) {
		return
	}
	p.abort()
	<-exited
	c.Err = fmt.Errorf("%s: %w", c.Name, ErrKillFailed)
}

// pipes are a call's stdout and stderr, read to end of file.
type pipes struct {
	files []*os.File // read ends, then write ends
	eof   chan struct{}
}

func attachPipes(cmd *exec.Cmd, stdout, stderr io.Writer) (*pipes, error) {
	p := &pipes{eof: make(chan struct{})}
	var wg sync.WaitGroup
	for _, w := range []io.Writer{stdout, stderr} {
		rd, wr, err := os.Pipe()
		if err != nil {
			p.abort()
			return nil, fmt.Errorf("pipe: %w", err)
		}
		p.files = append(p.files, rd, wr)
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = io.Copy(w, rd) }()
	}
	cmd.Stdout, cmd.Stderr = p.files[1], p.files[3]
	go func() { wg.Wait(); close(p.eof) }()
	return p, nil
}

// parentDone closes the harness's copies of the write ends, so that end of
// file comes when the driver's side is closed.
func (p *pipes) parentDone() { _ = p.files[1].Close(); _ = p.files[3].Close() }

// abort closes everything, ending the readers.
func (p *pipes) abort() {
	for _, f := range p.files {
		_ = f.Close()
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// lockedBuffer is a strings.Builder for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
