package runner

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stintdev/stint/runner/artifact"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/output"
)

// emit hands ev to r.Events, one call at a time, stamping its time.
func (r *Runner) emit(ev output.Event) {
	if r.Events == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	r.evMu.Lock()
	defer r.evMu.Unlock()
	r.Events(ev)
}

// phase emits a phase event for a phase of job that began at start and
// ends now, and returns now, so that consecutive phases chain.
func (r *Runner) phase(job, phase string, start time.Time) time.Time {
	now := time.Now()
	if r.Events != nil {
		d := now.Sub(start)
		r.emit(output.Event{Time: now.UTC(), Type: output.EventPhase, Job: job, Phase: phase, Millis: d.Milliseconds(), Micros: d.Microseconds()})
	}
	return now
}

// withStatus fills ev's exit fields (status, signal, oom) from st.
func withStatus(ev output.Event, st *container.ExitStatus) output.Event {
	if st == nil {
		return ev
	}
	if st.Signal != 0 {
		ev.Signal = unix.SignalName(st.Signal)
	} else {
		ev.Status = output.Status(st.Code)
	}
	ev.OOM = st.OOM
	return ev
}

// reportArtifacts reports what the artifact collector did for job: in the
// job's log (a summary line, then each link, pattern that matched nothing
// and entry skipped) and as events (each file copied with its size, link
// with its target, pattern or entry skipped with why), under dest.
func (r *Runner) reportArtifacts(job, dest string, got artifact.Result, logw io.Writer) {
	fmt.Fprintf(logw, "artifacts: %s: %s\n", dest, got.Summary())
	for _, l := range got.Details() {
		fmt.Fprintf(logw, "  %s\n", l)
	}
	links := map[string]string{}
	for _, l := range got.Links {
		links[l.Path] = l.Target
	}
	for _, f := range got.Copied {
		ev := output.Event{Type: output.EventArtifact, Job: job, Artifact: f, Dest: dest, Bytes: got.Sizes[f]}
		if target, ok := links[f]; ok {
			ev.Target, ev.Bytes = target, 0
		}
		r.emit(ev)
	}
	for _, s := range got.Skipped {
		r.emit(output.Event{Type: output.EventArtifact, Job: job, Artifact: s.Path, Dest: dest, Reason: s.Reason})
	}
}
