// Package output is the wire format of stint --json: one Event per line,
// written by an Emitter (safe for concurrent jobs; each event is one Write).
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Event types, the "type" of each JSON line under --json.
const (
	EventJobStarted   = "job_started"   // Job, Container
	EventPhase        = "phase"         // Job, Phase, Millis, Micros: one lifecycle phase took that long (Cached: image_build or golden found ready)
	EventPhaseStarted = "phase_started" // Job, Phase: a phase that can take long began (image_build, golden)
	EventStepStarted  = "step_started"  // Job, Step, Command
	EventOutput       = "output"        // Job, Step, Stream, Line
	EventStepFinished = "step_finished" // Job, Step, Status or Signal, OOM, Timeout, Millis
	EventArtifact     = "artifact"      // Job, Artifact, Dest, Bytes, or Target (a link), or Reason (skipped; "matched nothing" for a pattern)
	EventJobFinished  = "job_finished"  // Job, Container, Result, Step/Command/Status/Signal/OOM of the failing step, Millis, Dest, Files and Bytes (artifacts), Log, Kept
	EventTeardownDone = "teardown_done" // Job, Container, Millis, Error if something was left
	EventError        = "error"         // Error: a host failure outside any one job
)

// Streams, for EventOutput's Stream.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Phases, for EventPhase: the steps of an ephemeral job's life.
const (
	PhaseClone     = "clone"
	PhaseConfigure = "configure"
	PhaseStart     = "start"
	PhaseExec      = "exec"
	PhaseArtifacts = "artifacts"
	PhaseStop      = "stop"
	PhaseDestroy   = "destroy"
)

// Phases before a job's container exists, which can take long: each has a
// phase_started event first, and its phase event says Cached when nothing
// had to be made.
const (
	PhaseImageBuild = "image_build" // the job's image: built, pulled or imported unless Cached
	PhaseGolden     = "golden"      // the image's golden volume: made unless Cached
)

// Outcome is how a job (or one of its steps) ended: the one set of
// outcome names, in events (EventJobFinished's Result) and in the runner's
// results alike.
type Outcome string

// Outcomes.
const (
	ResultPassed  Outcome = "passed"
	ResultFailed  Outcome = "failed"  // a step exited non-zero, was killed, or OOM
	ResultTimeout Outcome = "timeout" // the job's timeout killed the container
	ResultError   Outcome = "error"   // a host failure (exit code 3), not the job's fault
	ResultAborted Outcome = "aborted" // SIGINT/SIGTERM stopped it
)

// Event is one JSON line under --json. Fields that do not apply to a type are
// omitted; a missing number is 0.
type Event struct {
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	Job       string    `json:"job,omitempty"`
	Container string    `json:"container,omitempty"`
	Step      int       `json:"step,omitempty"`    // 1-based index into the job's run lines
	Command   string    `json:"command,omitempty"` // the run line of a step
	Stream    string    `json:"stream,omitempty"`  // stdout | stderr
	Line      string    `json:"line,omitempty"`    // output, without its newline (invalid UTF-8 becomes U+FFFD; the log has the bytes)
	Status    *int      `json:"status,omitempty"`  // exit status, when the process exited
	Signal    string    `json:"signal,omitempty"`  // e.g. "SIGKILL", when a signal ended it
	OOM       bool      `json:"oom,omitempty"`     // the kernel's OOM killer fired in the container
	Timeout   bool      `json:"timeout,omitempty"`
	Phase     string    `json:"phase,omitempty"`
	Millis    int64     `json:"millis,omitempty"`   // duration of the phase, step, job or teardown
	Micros    int64     `json:"micros,omitempty"`   // phase events: the same duration in µs (phases can be sub-ms)
	Result    Outcome   `json:"result,omitempty"`   // job_finished: passed | failed | timeout | error | aborted
	Artifact  string    `json:"artifact,omitempty"` // container path
	Dest      string    `json:"dest,omitempty"`     // host path
	Bytes     int64     `json:"bytes,omitempty"`    // artifact: the file's data; job_finished: all artifacts'
	Files     int       `json:"files,omitempty"`    // job_finished: regular files collected (links not counted)
	Target    string    `json:"target,omitempty"`   // an artifact copied as a symlink: its target
	Reason    string    `json:"reason,omitempty"`   // an artifact skipped: why
	Log       string    `json:"log,omitempty"`      // job_finished: the job's log file
	Kept      bool      `json:"kept,omitempty"`     // job_finished: the container was kept (--keep-on-failure)
	Cached    bool      `json:"cached,omitempty"`   // image_build, golden: nothing was made, it was there
	Error     string    `json:"error,omitempty"`
}

// Emitter writes Events as JSON, one object per line, each with a single
// Write. It is safe for concurrent use.
type Emitter struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewEmitter returns an Emitter writing to w.
func NewEmitter(w io.Writer) *Emitter {
	return &Emitter{w: w, now: time.Now}
}

// Emit writes ev, stamping Time (UTC) if it is zero.
func (e *Emitter) Emit(ev Event) error {
	if ev.Time.IsZero() {
		ev.Time = e.now().UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", ev.Type, err)
	}
	b = append(b, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.w.Write(b); err != nil {
		return fmt.Errorf("write %s event: %w", ev.Type, err)
	}
	return nil
}

// Line emits an output event: one line of a job's output.
func (e *Emitter) Line(job string, step int, stream, line string) {
	// A consumer that went away must not fail the job; the log keeps it.
	_ = e.Emit(Event{Type: EventOutput, Job: job, Step: step, Stream: stream, Line: line})
}

// Phase emits a phase event for a phase that began at start and ends now,
// and returns now, so consecutive phases chain:
//
//	t := time.Now()
//	// clone ...
//	t = em.Phase(job, output.PhaseClone, t)
//	// configure ...
//	t = em.Phase(job, output.PhaseConfigure, t)
func (e *Emitter) Phase(job, phase string, start time.Time) time.Time {
	now := e.now()
	d := now.Sub(start)
	_ = e.Emit(Event{Time: now.UTC(), Type: EventPhase, Job: job, Phase: phase, Millis: d.Milliseconds(), Micros: d.Microseconds()})
	return now
}

// Status returns a pointer to code, for Event.Status.
func Status(code int) *int { return &code }
