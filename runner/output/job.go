// Package output carries a job's output streams to the user: whole lines,
// prefixed by the job name (coloured on a terminal) or as JSON events, never
// mixing lines of jobs that run at once, and the raw bytes into a log file
// per job.
//
// The pieces:
//
//	sink := output.NewTerminal(os.Stdout, output.TerminalOptions{Color: output.ColorFor(os.Stdout)})
//	// or, for --json: sink := output.NewEmitter(os.Stdout)
//	log, _ := output.OpenLog(root, containerName)     // <root>/logs/<container>.log
//	j := output.NewJob("test[go=1.22]", sink, log)
//	j.SetStep(1)
//	// hand j.Stdout() and j.Stderr() to the process (from two goroutines is fine)
//	j.Close()                                           // flushes a last partial line
//
// A Job splits what it is given into lines per stream (a partial line waits
// for its newline, a step change or Close) and hands each whole line to the
// Sink, which writes it with a single Write under its own lock: lines from
// several jobs (-j N) interleave, but never within a line.
package output

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Stream names for Sink.Line.
const (
	Stdout = "stdout"
	Stderr = "stderr"
	Meta   = "stint" // stint's own lines about a job ("$ make test", "exit status 2"), through the same Sink
)

// maxLine bounds a buffered partial line: longer output without a newline
// is passed on in pieces of this size rather than held without limit.
const maxLine = 64 << 10

// Sink receives whole lines (without their newline) of job output. It must
// be safe for concurrent use by several jobs.
type Sink interface {
	Line(job string, step int, stream, line string)
}

// Job is one job's output: io.Writers for its streams that tee raw bytes to
// its log and pass whole lines to a Sink. It is safe for concurrent use.
type Job struct {
	name string
	sink Sink
	log  io.Writer

	mu     sync.Mutex
	step   int
	bufs   map[string]*bytes.Buffer
	logErr error
}

// NewJob returns the output of the job called name (as users see it, e.g.
// "test[go=1.22]"). log may be nil.
func NewJob(name string, sink Sink, log io.Writer) *Job {
	return &Job{name: name, sink: sink, log: log, bufs: map[string]*bytes.Buffer{}}
}

// SetStep flushes any partial lines and tags what follows with step n
// (1-based; 0 for output outside a step).
func (j *Job) SetStep(n int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushLocked()
	j.step = n
}

// Stdout returns the writer for the job's standard output.
func (j *Job) Stdout() io.Writer { return streamWriter{j, Stdout} }

// Stderr returns the writer for the job's standard error.
func (j *Job) Stderr() io.Writer { return streamWriter{j, Stderr} }

// Flush passes on any partial lines as lines.
func (j *Job) Flush() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushLocked()
}

// Close flushes partial lines and returns the first error writing the log,
// if any. It does not close the log.
func (j *Job) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushLocked()
	if j.logErr != nil {
		return fmt.Errorf("write log of job %s: %w", j.name, j.logErr)
	}
	return nil
}

type streamWriter struct {
	j      *Job
	stream string
}

// Write never fails: output must keep flowing to the user even when the log
// cannot be written (Close reports that).
func (w streamWriter) Write(p []byte) (int, error) {
	j := w.j
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.log != nil && j.logErr == nil {
		_, j.logErr = j.log.Write(p)
	}
	buf := j.bufs[w.stream]
	if buf == nil {
		buf = &bytes.Buffer{}
		j.bufs[w.stream] = buf
	}
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			buf.Write(rest)
			for buf.Len() >= maxLine {
				j.sink.Line(j.name, j.step, w.stream, string(buf.Next(maxLine)))
			}
			break
		}
		buf.Write(rest[:i])
		j.emit(w.stream, buf)
		rest = rest[i+1:]
	}
	return len(p), nil
}

// emit passes buf on as one line (dropping the \r of a \r\n) and resets it.
func (j *Job) emit(stream string, buf *bytes.Buffer) {
	line := bytes.TrimSuffix(buf.Bytes(), []byte{'\r'})
	j.sink.Line(j.name, j.step, stream, string(line))
	buf.Reset()
}

func (j *Job) flushLocked() {
	for _, s := range []string{Stdout, Stderr} {
		if b := j.bufs[s]; b != nil && b.Len() > 0 {
			j.emit(s, b)
		}
	}
}

// LogPath is where a job container's log lives: <root>/logs/<container>.log.
func LogPath(root, container string) string {
	return filepath.Join(root, "logs", container+".log")
}

// OpenLog creates (or appends to) the log of a job container under root.
func OpenLog(root, container string) (*os.File, error) {
	if container == "" || filepath.Base(container) != container || container[0] == '.' {
		return nil, fmt.Errorf("open log: invalid container name %q", container)
	}
	p := LogPath(root, container)
	// Root's only: a job's output may print its secrets.
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("open log of %s: %w", container, err)
	}
	if err := os.Chmod(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("open log of %s: %w", container, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", container, err)
	}
	return f, nil
}
