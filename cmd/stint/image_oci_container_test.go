package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/images/imagetest"
)

// TestContainerOCIDefaults: a long-lived container on an OCI image (no
// /sbin/init) with no command runs the config's Entrypoint and Cmd with
// the config's Env under the spec's (a spec key wins), on create and again
// on a restart; a spec command replaces Entrypoint and Cmd. An image with
// neither a command nor an init is exit 2 naming the container, and
// leaves nothing; down leaves nothing.
func TestContainerOCIDefaults(t *testing.T) {
	f := newCLI(t)
	lay := imagetest.NewLayout(t, filepath.Join(f.dir, "layout"))
	lay.Tag("v1", lay.Image("amd64", v1.Config{
		Env:        []string{"PATH=/bin", "APP=from-image", "OVER=image"},
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{"echo started env=$APP,$OVER path=$PATH; exec sleep 100000"},
	}, busyboxLayer(t)))
	lay.Tag("bare", lay.Image("amd64", v1.Config{Env: []string{"PATH=/bin"}}, busyboxLayer(t)))
	p := f.spec(t, `
[container.web]
image = "oci-layout:layout:v1"
env = { OVER = "spec" }

[container.own]
image = "oci-layout:layout:v1"
command = ["/bin/sh", "-c", "echo own app=$APP; exec sleep 100000"]
`)
	t.Cleanup(func() { _, _ = f.run(t, "down", p) }) // only if the test failed before its down
	out, code := f.run(t, "apply", p)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "web created (running)")
	assert.Contains(t, out, "own created (running)")

	logs := func(name, want string, n int) { t.Helper(); consoleHas(t, f, name, want, n) }
	logs("web", "started env=from-image,spec path=/bin\n", 1)
	logs("own", "own app=from-image\n", 1)

	// A restart starts it from its stored spec: the image's command again.
	out, code = f.run(t, "restart", "web")
	require.Equal(t, 0, code, out)
	logs("web", "started env=from-image,spec path=/bin\n", 2)

	out, code = f.run(t, "down", p)
	require.Equal(t, 0, code, out)
	f.assertClean(t)

	p = f.spec(t, `
[container.bare]
image = "oci-layout:layout:bare"
`)
	out, code = f.run(t, "apply", p)
	assert.Equal(t, ExitUsage, code, out)
	assert.Contains(t, out, ".bare: image oci-layout:"+lay.Dir+":bare: nothing to run")
	f.assertClean(t)
}

// TestContainerOCIWorkdirUser: a long-lived container's command (the
// image's or the spec's) runs in the image config's WorkingDir (made when
// the image lacks it) as its User, as a job's lines do, at create and again
// at a restart; a spec that sets its own workdir and user keeps PID 1 as
// root in / (the spec's are `stint shell`'s).
func TestContainerOCIWorkdirUser(t *testing.T) {
	f := newCLI(t)
	lay := imagetest.NewLayout(t, filepath.Join(f.dir, "layout"))
	lay.Tag("v1", lay.Image("amd64", v1.Config{
		Env:        []string{"PATH=/bin"},
		WorkingDir: "/srv/app",
		User:       "1234:2345",
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{"echo pid1 cwd=$(pwd) id=$(id -u):$(id -g); exec sleep 100000"},
	}, busyboxLayer(t)))
	p := f.spec(t, `
[container.web]
image = "oci-layout:layout:v1"

[container.cmd]
image = "oci-layout:layout:v1"
command = ["/bin/sh", "-c", "echo own cwd=$(pwd) id=$(id -u):$(id -g); exec sleep 100000"]

[container.own]
image = "oci-layout:layout:v1"
workdir = "/tmp"
user = "root"
`)
	t.Cleanup(func() { _, _ = f.run(t, "down", p) }) // only if the test failed before its down
	out, code := f.run(t, "apply", p)
	require.Equal(t, 0, code, out)

	logs := func(name, want string, n int) { t.Helper(); consoleHas(t, f, name, want, n) }
	logs("web", "pid1 cwd=/srv/app id=1234:2345\n", 1)
	logs("cmd", "own cwd=/srv/app id=1234:2345\n", 1)
	logs("own", "pid1 cwd=/ id=0:0\n", 1)

	out, code = f.run(t, "restart", "web")
	require.Equal(t, 0, code, out)
	logs("web", "pid1 cwd=/srv/app id=1234:2345\n", 2)

	out, code = f.run(t, "down", p)
	require.Equal(t, 0, code, out)
	f.assertClean(t)
}

// consoleHas waits until `stint logs name` (a long-lived container's
// console, written by LXC's monitor in its own time) holds want n times.
func consoleHas(t *testing.T, f *cliFixture, name, want string, n int) {
	t.Helper()
	var out string
	ok := assert.Eventually(t, func() bool {
		var code int
		out, code = f.run(t, "logs", name)
		out = strings.ReplaceAll(out, "\r", "") // a terminal's line ends
		if code != 0 {
			out = fmt.Sprintf("exit %d: %s", code, out)
		}
		return strings.Count(out, want) == n
	}, time.Minute, 100*time.Millisecond, "%s's console: want %q %d times", name, want, n)
	if !ok {
		t.Logf("%s's console: %q", name, out)
	}
}
