package lxcrt

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/stintdev/stint/runner/container"
)

// execStdio makes an Exec's streams into the three files the agent hands
// to the command, as os/exec does for a child: a file is passed as it is,
// nil is /dev/null, any other reader or writer gets a pipe and a copying
// goroutine (one pipe for stdout and stderr when they are the same writer,
// so their order is kept).
type execStdio struct {
	files   [3]*os.File
	ours    []*os.File // our copies of what the command got: closed once it started
	readers []*os.File // the read ends the copiers drain
	copies  sync.WaitGroup
}

// waitDelay is how long output is still copied after the command ended,
// while a process it left in the background holds the pipe (as attach's
// cmd.WaitDelay).
const waitDelay = 2 * time.Second

func newExecStdio(opts container.ExecOptions) (*execStdio, error) {
	s := &execStdio{}
	fail := func(err error) (*execStdio, error) {
		s.closeAll()
		return nil, err
	}
	var err error
	if s.files[0], err = s.input(opts.Stdin); err != nil {
		return fail(err)
	}
	if s.files[1], err = s.output(opts.Stdout); err != nil {
		return fail(err)
	}
	if opts.Stderr != nil && opts.Stderr == opts.Stdout {
		s.files[2] = s.files[1]
	} else if s.files[2], err = s.output(opts.Stderr); err != nil {
		return fail(err)
	}
	return s, nil
}

func (s *execStdio) input(r io.Reader) (*os.File, error) {
	if f, ok := r.(*os.File); ok {
		return f, nil
	}
	if r == nil {
		f, err := os.Open(os.DevNull)
		if err == nil {
			s.ours = append(s.ours, f)
		}
		return f, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s.ours = append(s.ours, pr)
	go func() {
		_, _ = io.Copy(pw, r)
		pw.Close()
	}()
	return pr, nil
}

func (s *execStdio) output(w io.Writer) (*os.File, error) {
	if f, ok := w.(*os.File); ok {
		return f, nil
	}
	if w == nil {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err == nil {
			s.ours = append(s.ours, f)
		}
		return f, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	s.ours = append(s.ours, pw)
	s.readers = append(s.readers, pr)
	s.copies.Add(1)
	go func() {
		defer s.copies.Done()
		_, _ = io.Copy(w, pr)
	}()
	return pw, nil
}

// finish closes our copies and waits for the output to be copied: to EOF,
// or waitDelay past the command's end if something still holds a pipe.
func (s *execStdio) finish() {
	for _, f := range s.ours {
		f.Close()
	}
	done := make(chan struct{})
	go func() { s.copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitDelay):
		for _, r := range s.readers {
			r.Close() // the copier's Read returns; what's left is lost, as with attach
		}
		<-done
	}
	for _, r := range s.readers {
		r.Close()
	}
}

func (s *execStdio) closeAll() {
	for _, f := range append(s.ours, s.readers...) {
		f.Close()
	}
}
