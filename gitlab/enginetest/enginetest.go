// Package enginetest is the conformance suite for gitlab.Engine
// implementations: each runs Suite with a factory, the way storage backends
// run storagetest.
package enginetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stintdev/stint/gitlab"
)

// Factory returns a fresh engine for one test, and a job container it can
// make: Image, BuildsDir and CacheDir set; the suite names it.
type Factory func(t *testing.T) (gitlab.Engine, gitlab.JobContainer)

// Suite runs every conformance test against the engines newEngine makes.
func Suite(t *testing.T, newEngine Factory) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, e gitlab.Engine, job gitlab.JobContainer)
	}{
		{"Images", testImages},
		{"Exec", testExec},
		{"Environment", testEnvironment},
		{"BuildsDirOutlivesAStage", testBuildsDir},
		{"Cancel", testCancel},
		{"Background", testBackground},
		{"Cleanup", testCleanup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, job := newEngine(t)
			job.Name = name(t)
			job.Hostname = job.Name
			tc.fn(t, e, job)
		})
	}
}

var unsafe = regexp.MustCompile(`[^a-z0-9]+`)

// name is a container name unique to this process and test.
func name(t *testing.T) string {
	n := fmt.Sprintf("gitlab-et%d-%s", os.Getpid(), strings.Trim(unsafe.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-"))
	if len(n) > 56 {
		n = n[:56]
	}
	return strings.TrimRight(n, "-")
}

func prepare(t *testing.T, e gitlab.Engine, job gitlab.JobContainer) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() {
		if err := e.Cleanup(context.Background(), job, gitlab.OutcomeAbandoned); err != nil {
			t.Errorf("cleanup %s: %v", job.Name, err)
		}
	})
	if err := e.Prepare(ctx, job); err != nil {
		t.Fatalf("prepare %s: %v", job.Name, err)
	}
}

// run execs a /bin/sh script in job's container.
func run(ctx context.Context, e gitlab.Engine, job gitlab.JobContainer, script string, env []string) (int, string, string, error) {
	var out, errb bytes.Buffer
	p := path.Join(gitlab.ScriptDir, "enginetest")
	code, err := e.Exec(ctx, job.Name, gitlab.Exec{Path: p, Script: []byte(script), Argv: []string{"/bin/sh", p},
		Env: env, Dir: "/", Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String(), err
}

func testImages(t *testing.T, e gitlab.Engine, job gitlab.JobContainer) {
	ctx := context.Background()
	if ok, err := e.HasImage(ctx, job.Image); err != nil || !ok {
		t.Errorf("HasImage(%q) = %v, %v; the factory's image", job.Image, ok, err)
	}
	if ok, err := e.HasImage(ctx, "no-such-image-enginetest"); err != nil || ok {
		t.Errorf("HasImage of a missing image = %v, %v", ok, err)
	}
	if _, err := e.Remotes(ctx); err != nil {
		t.Errorf("Remotes: %v", err)
	}
}

func testExec(t *testing.T, e gitlab.Engine, job gitlab.JobContainer) {
	prepare(t, e, job)
	code, out, errOut, err := run(context.Background(), e, job, "echo out; echo err >&2; exit 3\n", gitlab.ContainerEnv(nil))
	if err != nil || code != 3 || out != "out\n" || errOut != "err\n" {
		t.Errorf("exec = %d, %q, %q, %v; want 3, out, err", code, out, errOut, err)
	}
	code, _, _, err = run(context.Background(), e, job, "kill -9 $$\n", gitlab.ContainerEnv(nil))
	if err != nil || code == 0 {
		t.Errorf("a script killed by a signal: %d, %v; want a non-zero status", code, err)
	}
}

// testEnvironment: the script's process gets exactly Exec.Env.
func testEnvironment(t *testing.T, e gitlab.Engine, job gitlab.JobContainer) {
	prepare(t, e, job)
	env := append(gitlab.ContainerEnv(map[string]string{"ODD": "a b\tc=d"}), "EMPTY=")
	code, out, _, err := run(context.Background(), e, job, "tr '\\000' '\\n' < /proc/$$/environ\n", env)
	if err != nil || code != 0 {
		t.Fatalf("exec: %d, %v", code, err)
	}
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	slices.Sort(got)
	want := slices.Clone(env)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("environment:\n got %q\nwant %q", got, want)
	}
}

func testBuildsDir(t *testing.T, e gitlab.Engine, job gitlab.JobContainer) {
	prepare(t, e, job)
	f := path.Join(job.BuildsDir, "group/project/left-by-stage-1")
	ctx := context.Background()
	if code, _, errOut, err := run(ctx, e, job, fmt.Sprintf("mkdir -p %s && echo x > %s\n", path.Dir(f), f), gitlab.ContainerEnv(nil)); code != 0 || err != nil {
		t.Fatalf("stage 1: %d %v %s", code, err, errOut)
	}
	if code, out, _, err := run(ctx, e, job, "cat "+f+"\n", gitlab.ContainerEnv(nil)); code != 0 || err != nil || out != "x\n" {
		t.Errorf("stage 2 sees %q (%d, %v), want what stage 1 left", out, code, err)
	}
}

func testCancel(t *testing.T, e gitlab.Engine, job gitlab.JobContainer) {
	prepare(t, e, job)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, _, err := run(ctx, e, job, "sleep 30\n", gitlab.ContainerEnv(nil))
	if err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("cancelled exec: %v after %s; want an error soon", err, time.Since(start))
	}
	if code, _, _, err := run(context.Background(), e, job, "true\n", gitlab.ContainerEnv(nil)); code != 0 || err != nil {
		t.Errorf("exec after a cancelled one: %d, %v", code, err)
	}
}

// testCleanup: Cleanup is harmless on a job that is gone or never was, and
// an Exec after it is an error, not an exit status.
func testCleanup(t *testing.T, e gitlab.Engine, job gitlab.JobContainer) {
	ctx := context.Background()
	if err := e.Cleanup(ctx, job, gitlab.OutcomeAbandoned); err != nil {
		t.Errorf("cleanup of a job never prepared: %v", err)
	}
	if err := e.Prepare(ctx, job); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := e.Cleanup(ctx, job, gitlab.OutcomePassed); err != nil {
			t.Errorf("cleanup %d: %v", i+1, err)
		}
	}
	if _, _, _, err := run(ctx, e, job, "true\n", gitlab.ContainerEnv(nil)); err == nil {
		t.Error("exec after cleanup: no error")
	}
}

// testBackground: a process the script leaves running with its output
// inherited does not hold Exec past the script's end.
func testBackground(t *testing.T, e gitlab.Engine, job gitlab.JobContainer) {
	prepare(t, e, job)
	start := time.Now()
	code, out, _, err := run(context.Background(), e, job, "sleep 8 &\necho started\n", gitlab.ContainerEnv(nil))
	if err != nil || code != 0 || out != "started\n" {
		t.Errorf("exec = %d, %q, %v", code, out, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("exec returned %s after a script that left a process in the background", d)
	}
}
