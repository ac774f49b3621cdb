package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/runner/output"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// phaseEvents are the image_build and golden phase events of a --json run.
func phaseEvents(t *testing.T, out string) map[string]map[string]any {
	t.Helper()
	got := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
		if ev["type"] == "phase" && (ev["phase"] == "image_build" || ev["phase"] == "golden") {
			got[ev["phase"].(string)] = ev
		}
	}
	return got
}

// TestCLIImagePhases (issue 19): the time a job waits for its image and
// its golden volume is its own phase: --json has image_build and golden
// phases with their durations, cached on the second run; the text output
// says so on stderr ("[j] image: ready in ...", then "cached"), and the
// summary's job time leaves it out.
func TestCLIImagePhases(t *testing.T) {
	f := newCLI(t)
	p := f.spec(t, `
[job.j]
image = "busybox"
run = ["true"]
`)
	c := f.cmd("--json", "run", p)
	out, err := c.Output()
	require.NoError(t, err)
	ev := phaseEvents(t, string(out))
	require.Contains(t, ev, "image_build", string(out))
	require.Contains(t, ev, "golden", string(out))
	assert.Nil(t, ev["image_build"]["cached"], "built on first use")
	assert.Nil(t, ev["golden"]["cached"], "made on first use")
	assert.Positive(t, ev["image_build"]["micros"])
	assert.Positive(t, ev["golden"]["micros"])

	out, err = f.cmd("--json", "run", p).Output()
	require.NoError(t, err)
	ev = phaseEvents(t, string(out))
	assert.Equal(t, true, ev["image_build"]["cached"])
	assert.Equal(t, true, ev["golden"]["cached"])

	got, code := f.run(t, "run", p)
	require.Equal(t, 0, code, got)
	assert.Contains(t, got, "[j] image: cached\n")
	assert.NotContains(t, got, "golden volume", "a golden volume already there says nothing")

	// A fresh root: built and made, on a terminal.
	f2 := newCLI(t)
	p2 := f2.spec(t, `
[job.j]
image = "busybox"
run = ["true"]
`)
	master, slave := openTestPty(t)
	require.NoError(t, unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 120}))
	cmd := f2.cmd("run", p2)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, slave
	require.NoError(t, cmd.Start())
	slave.Close()
	var tty bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&tty, master); close(done) }()
	require.NoError(t, cmd.Wait(), tty.String())
	<-done
	assert.Regexp(t, `\[j\] image: ready in [\d.]+m?s`, tty.String())
	assert.Regexp(t, `\[j\] golden volume: made in [\d.]+m?s`, tty.String())
	assert.Regexp(t, `PASSED\s+j\s+[\d.]+m?s`, stdout.String())
	f.assertClean(t)
	f2.assertClean(t)
}

// TestPhaseSpinner: on a terminal, a long phase is a spinner line with its
// elapsed time, redrawn in place, that gives way to one line when the
// phase ends.
func TestPhaseSpinner(t *testing.T) {
	master, slave := openTestPty(t)
	require.NoError(t, unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 100}))
	var tty bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&tty, master); close(done) }()
	pp := newPhaseProgress(&Globals{Stderr: slave})
	require.NotNil(t, pp.tty, "a pty is a terminal")
	pp.Event(output.Event{Type: output.EventPhaseStarted, Job: "j", Phase: output.PhaseImageBuild})
	time.Sleep(1200 * time.Millisecond)
	pp.Event(output.Event{Type: output.EventPhase, Job: "j", Phase: output.PhaseImageBuild, Micros: 1_234_000})
	slave.Close()
	<-done
	out := tty.String()
	assert.Contains(t, out, "[j] image: ", "the spinner's line")
	assert.Regexp(t, `[01]s`, out, "its elapsed time")
	assert.Contains(t, out, "\x1b[", "redrawn in place")
	assert.True(t, strings.HasSuffix(out, "[j] image: ready in 1.23s\r\n"), "%q", out)
}
