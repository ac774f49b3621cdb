package main

import (
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

	// logs waits for nothing: the console log is written by LXC's monitor.
	logs := func(name, want string, n int) {
		t.Helper()
		var out string
		assert.Eventually(t, func() bool {
			out, _ = f.run(t, "logs", name)
			out = strings.ReplaceAll(out, "\r", "") // a terminal's line ends
			return strings.Count(out, want) == n
		}, time.Minute, 100*time.Millisecond, "%s's console: want %q %d times: %q", name, want, n, out)
	}
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
