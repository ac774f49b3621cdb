package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(p, []byte(got), 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, string(want), got)
}

func TestEmitterGolden(t *testing.T) {
	var b bytes.Buffer
	em := NewEmitter(&b)
	clock := time.Date(2026, 11, 23, 21, 0, 0, 0, time.UTC)
	em.now = func() time.Time { clock = clock.Add(1500 * time.Microsecond); return clock }
	job := "test[go=1.22]"
	events := []Event{
		{Type: EventJobStarted, Job: job, Container: "stint-demo-test-go-1.22-a1b2"},
		{Type: EventStepStarted, Job: job, Step: 1, Command: "make test"},
		{Type: EventStepFinished, Job: job, Step: 1, Status: Status(0), Millis: 812},
		{Type: EventStepStarted, Job: job, Step: 2, Command: "make dist"},
		{Type: EventStepFinished, Job: job, Step: 2, Signal: "SIGKILL", OOM: true, Millis: 40},
		{Type: EventArtifact, Job: job, Artifact: "/src/dist/a.tar.gz", Dest: "artifacts/test/a.tar.gz", Bytes: 1024},
		{Type: EventArtifact, Job: job, Artifact: "/src/dist/abs.tar.gz", Target: "/etc/passwd"},
		{Type: EventArtifact, Job: job, Artifact: "/src/dist/fifo", Reason: "fifo: not copied"},
		{Type: EventJobFinished, Job: job, Result: ResultFailed, Step: 2, Signal: "SIGKILL", OOM: true, Millis: 900},
		{Type: EventTeardownDone, Job: job, Container: "stint-demo-test-go-1.22-a1b2", Millis: 120},
		{Type: EventError, Error: "storage pool /var/lib/stint/storage: no space left on device"},
	}
	start := em.now()
	em.Line(job, 1, Stdout, "ok \xff invalid utf-8")
	for _, ev := range events {
		require.NoError(t, em.Emit(ev))
	}
	em.Phase(job, PhaseClone, start)
	golden(t, "events.golden", b.String())

	// Each line decodes back to the event it came from.
	sc := bufio.NewScanner(&b)
	sc.Scan() // the output line
	for _, want := range events {
		require.True(t, sc.Scan())
		var got Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &got))
		got.Time = time.Time{}
		assert.Equal(t, want, got)
	}
}

func TestEmitterConcurrent(t *testing.T) {
	var b bytes.Buffer
	em := NewEmitter(&b)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for n := range 100 {
				assert.NoError(t, em.Emit(Event{Type: EventOutput, Job: fmt.Sprint("j", i), Step: n, Line: strings.Repeat("y", n)}))
			}
		})
	}
	wg.Wait()
	sc := bufio.NewScanner(&b)
	count := 0
	for sc.Scan() {
		var ev Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), "line %d: %s", count, sc.Text())
		assert.Len(t, ev.Line, ev.Step)
		assert.False(t, ev.Time.IsZero())
		count++
	}
	assert.Equal(t, 800, count)
}
