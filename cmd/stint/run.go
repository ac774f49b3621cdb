package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/runner/output"
	"github.com/stintdev/stint/spec"
)

// RunCmd runs jobs ephemerally.
type RunCmd struct {
	Args          []string `arg:"" name:"FILE|DIR|JOB" help:"Spec files or directories (arguments naming an existing path), then jobs to run (default: all)."`
	Parallel      int      `short:"j" name:"jobs" default:"1" help:"Run N jobs at once."`
	Artifacts     string   `default:"artifacts" type:"path" help:"Directory for artifacts (<dir>/<job>/)."`
	KeepOnFailure bool     `help:"Keep a failed job's container for inspection (stint ps; stint gc --kept removes it)."`
}

// Run runs the selected jobs and exits with the worst job's code.
func (c *RunCmd) Run(g *Globals) error {
	signals := signalsAhead(g.Stderr, terminating...)
	defer func() { _, _, stop := signals(); stop() }()
	var paths, names []string
	for _, a := range c.Args {
		if _, err := os.Stat(a); err == nil {
			paths = append(paths, a)
		} else {
			names = append(names, a)
		}
	}
	if len(paths) == 0 {
		return withCode(ExitUsage, fmt.Errorf("stint run: no spec file or directory among %s", strings.Join(c.Args, " ")))
	}
	set, err := spec.Load(paths, spec.Options{ImageKnown: runImageKnown(g.Root)})
	if err != nil {
		return withCode(ExitUsage, err)
	}
	jobs, err := spec.SelectJobs(set, names)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	if len(jobs) == 0 {
		return withCode(ExitUsage, fmt.Errorf("stint run: the specs define no job"))
	}
	if err := checkRuntimeKeys(g, jobs, nil); err != nil {
		return err
	}

	ctx, abort, _ := signals() // caught from here on, before anything is made
	g = closedOutputAborts(ctx, g, abort)
	opts := runner.RunOptions{Parallel: c.Parallel, ArtifactsDir: c.Artifacts, KeepOnFailure: c.KeepOnFailure, Output: g.Stdout}
	var em *output.Emitter
	if !g.JSON {
		opts.Events = newPhaseProgress(g).Event // image and golden phases
	} else {
		em = output.NewEmitter(g.Stdout)
		opts.Events = func(ev output.Event) { _ = em.Emit(ev) }
		opts.Output = g.Stderr
	}
	// A host failure outside any one job is an error event too with --json.
	hostFailed := func(err error) error {
		if em != nil {
			_ = em.Emit(output.Event{Type: output.EventError, Error: err.Error()})
		}
		return hostCode(err)
	}
	h, err := runner.Open(ctx, g.Root, runner.Options{Containers: true, Set: set, Remote: g.Remote, BuildOutput: g.buildOutput(opts.Output)})
	if err != nil {
		return hostFailed(err)
	}
	defer h.Close()
	gcFirst(ctx, g, h)
	results, err := h.RunJobs(ctx, jobs, opts)
	if err != nil {
		return hostFailed(err)
	}
	if !g.JSON {
		printSummary(g.Stdout, results, shellLine(g))
	}
	code := ExitOK
	for _, res := range results {
		switch {
		case res.HostFailure():
			code = ExitHost
		case !res.Passed() && code == ExitOK:
			code = ExitJobFail
		}
	}
	if code != ExitOK {
		return withCode(code, errors.New(""))
	}
	return nil
}

func printSummary(w io.Writer, results []runner.Result, shell string) {
	fmt.Fprintln(w, "\nSUMMARY")
	for _, r := range results {
		detail := ""
		switch r.Outcome {
		case runner.OutcomePassed:
		case runner.OutcomeFailed:
			detail = fmt.Sprintf("line %d `%s`: %s", r.Line, r.Command, r.Status)
			if r.Error != "" { // what stint found besides the status: a full pool, artifacts
				detail += "; " + r.Error
			}
		case runner.OutcomeTimeout:
			detail = fmt.Sprintf("line %d `%s`: %s", r.Line, r.Command, r.Error)
		default:
			detail = r.Error
		}
		if r.Status == nil && r.Outcome == runner.OutcomeFailed {
			detail = r.Error
		}
		// The job's own time; its image's (build, pull, golden volume) apart.
		fmt.Fprintf(w, "  %-8s %-24s %8s  %s\n", strings.ToUpper(string(r.Outcome)), r.Job, (r.Duration - r.Image).Round(10*time.Millisecond), detail)
		if r.Image >= 100*time.Millisecond {
			fmt.Fprintf(w, "           image: %s (before the job's own time)\n", r.Image.Round(10*time.Millisecond))
		}
		printArtifacts(w, r)
		if r.Log != "" {
			fmt.Fprintf(w, "           log: %s\n", r.Log)
		}
		if r.Kept {
			fmt.Fprintf(w, "           kept: container %s (stint gc --kept removes it)\n", r.Container)
			fmt.Fprintf(w, "           debug: %s %s\n", shell, r.Container)
		}
	}
}

// maxDetails bounds the artifact lines of one job in the summary; the log
// and --json have them all.
const maxDetails = 10

// printArtifacts says what was collected for r (files, links, bytes), then
// each link with its target, pattern that matched nothing and entry
// skipped with why.
func printArtifacts(w io.Writer, r runner.Result) {
	if r.Collected.Empty() {
		return
	}
	fmt.Fprintf(w, "           artifacts: %s: %s\n", r.Artifacts, r.Collected.Summary())
	lines := r.Collected.Details()
	for i, l := range lines {
		if i == maxDetails && len(lines) > maxDetails+1 {
			fmt.Fprintf(w, "             ... and %d more (the log has them)\n", len(lines)-i)
			break
		}
		fmt.Fprintf(w, "             %s\n", l)
	}
}

// terminating are the signals that stop jobs and tear down: Ctrl-C, kill,
// a closed terminal or dropped ssh session, and Ctrl-\ (no goroutine dump).
var terminating = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// signalContext is cancelled by the first terminating signal: jobs stop and
// tear down. Teardown already kills containers outright, so a second signal
// only says so; a third one exits at once (gc cleans up after that).
func signalContext(stderr io.Writer) (context.Context, func()) {
	return signalContextFor(stderr, terminating...)
}

// signalContextFor is signalContext for the given signals only.
func signalContextFor(stderr io.Writer, sigs ...os.Signal) (context.Context, func()) {
	ctx, _, stop := signalCancel(stderr, sigs...)
	return ctx, stop
}

// signalsAhead is signalCancel set up on a goroutine of its own, beside
// what its caller does meanwhile (run: loading the specs): Notify costs a
// round trip with the Go runtime's signal thread per signal, 0.25 ms for
// terminating's four. The function it returns waits for the set-up and
// returns signalCancel's results (the same ones at every call).
func signalsAhead(stderr io.Writer, sigs ...os.Signal) func() (context.Context, func(reason string), func()) {
	type caught struct {
		ctx   context.Context
		abort func(reason string)
		stop  func()
	}
	ready := make(chan caught, 1)
	go func() {
		ctx, abort, stop := signalCancel(stderr, sigs...)
		ready <- caught{ctx, abort, stop}
	}()
	get := sync.OnceValue(func() caught { return <-ready })
	return func() (context.Context, func(reason string), func()) {
		c := get()
		return c.ctx, c.abort, c.stop
	}
}

// signalCancel is signalContextFor that also returns its cancel: called with
// a reason, it counts as the first signal.
func signalCancel(stderr io.Writer, sigs ...os.Signal) (context.Context, func(reason string), func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 3)
	signal.Notify(ch, sigs...)
	var first sync.Once
	abort := func(reason string) {
		first.Do(func() {
			fmt.Fprintf(stderr, "stint: %s: stopping jobs and tearing down\n", reason)
			cancel()
		})
	}
	go func() {
		n := 0
		for sig := range ch {
			n++
			switch n {
			case 1:
				abort(sig.String())
			case 2:
				fmt.Fprintf(stderr, "stint: %s: already tearing down (containers are killed, not shut down); again to quit at once\n", sig)
			default:
				fmt.Fprintf(stderr, "stint: %s: quitting; run `stint gc` to remove what is left\n", sig)
				os.Exit(ExitHost)
			}
		}
	}()
	return ctx, abort, func() { signal.Stop(ch); cancel() }
}

// gcFirst removes what crashed runs left behind, before new work.
func gcFirst(ctx context.Context, g *Globals, h *runner.Host) {
	if res, err := h.GC(ctx, runner.GCOptions{}); err == nil && len(res.Removed) > 0 {
		fmt.Fprintf(g.Stderr, "stint: removed %s left by dead stint processes\n", plural(len(res.Removed), "container"))
	}
}

func jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// defaultRoot is --root's default (Globals.Root).
const defaultRoot = "/var/lib/stint"

// shellLine is the start of the command that enters a kept job, as the
// user would type it: sudo when they ran stint under sudo, --root unless
// it is the default, --remote when the job ran on one; each word quoted for
// a POSIX shell where it needs it.
func shellLine(g *Globals) string {
	words := []string{"stint"}
	if g.Root != defaultRoot {
		words = append(words, "--root", shQuote(g.Root))
	}
	if g.Remote != "" {
		words = append(words, "--remote", shQuote(g.Remote))
	}
	words = append(words, "shell")
	if os.Getenv("SUDO_USER") != "" {
		words = append([]string{"sudo"}, words...)
	}
	return strings.Join(words, " ")
}

// shQuote quotes s for a POSIX shell unless it is made of safe characters.
func shQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
