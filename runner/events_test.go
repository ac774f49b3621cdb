package runner

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/output"
)

func TestWithStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   *container.ExitStatus
		want output.Event
	}{
		{"no status", nil, output.Event{Type: output.EventStepFinished}},
		{"exit 0", &container.ExitStatus{}, output.Event{Type: output.EventStepFinished, Status: output.Status(0)}},
		{"exit 2", &container.ExitStatus{Code: 2}, output.Event{Type: output.EventStepFinished, Status: output.Status(2)}},
		{"signal", &container.ExitStatus{Code: 143, Signal: syscall.SIGTERM}, output.Event{Type: output.EventStepFinished, Signal: "SIGTERM"}},
		{"oom", &container.ExitStatus{Code: 137, Signal: syscall.SIGKILL, OOM: true}, output.Event{Type: output.EventStepFinished, Signal: "SIGKILL", OOM: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, withStatus(output.Event{Type: output.EventStepFinished}, tc.st))
		})
	}
}

func TestPhaseEvents(t *testing.T) {
	var got []output.Event
	r := &Runner{Events: func(ev output.Event) { got = append(got, ev) }}
	start := time.Now().Add(-3 * time.Millisecond)
	end := r.phase("j", output.PhaseClone, start)
	r.phase("j", output.PhaseStart, end)
	if assert.Len(t, got, 2) {
		assert.Equal(t, output.EventPhase, got[0].Type)
		assert.Equal(t, "clone", got[0].Phase)
		assert.GreaterOrEqual(t, got[0].Micros, int64(3000), "the phase lasted at least 3 ms")
		assert.Equal(t, got[0].Micros/1000, got[0].Millis)
		assert.Equal(t, end.UTC(), got[0].Time, "a phase's event is stamped with its end")
		assert.Equal(t, "start", got[1].Phase)
		assert.False(t, got[1].Time.Before(got[0].Time), "phases chain: the next starts where the last ended")
	}
	// Without a consumer, phase still chains and emits nothing.
	assert.False(t, (&Runner{}).phase("j", output.PhaseStop, start).IsZero())
}
