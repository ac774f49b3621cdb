package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/idmap"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/spec"
)

// TestShellEnv: the container's env, then the user's HOME, USER, LOGNAME,
// SHELL and TERM (theirs win), PATH defaulted; nothing of the caller's.
func TestShellEnv(t *testing.T) {
	t.Setenv("STINT_HOST_ONLY", "leak")
	u := User{Name: "dev", Home: "/home/dev", Shell: "/bin/bash"}
	for _, c := range []struct {
		name string
		base []string
		term string
		want []string
	}{
		{"defaults", nil, "", []string{"PATH=" + DefaultPath, "HOME=/home/dev", "USER=dev", "LOGNAME=dev", "SHELL=/bin/bash", "TERM=dumb"}},
		{"the container's PATH and env", []string{"PATH=/opt/bin", "EDITOR=vi", "HOME=/elsewhere"}, "xterm-256color",
			[]string{"PATH=/opt/bin", "EDITOR=vi", "HOME=/home/dev", "USER=dev", "LOGNAME=dev", "SHELL=/bin/bash", "TERM=xterm-256color"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := shellEnv(c.base, u, c.term)
			assert.ElementsMatch(t, c.want, got)
			assert.NotContains(t, strings.Join(got, "\n"), "leak")
		})
	}
	assert.Contains(t, shellEnv(nil, User{Name: "x"}, ""), "SHELL=/bin/sh", "no shell in passwd: /bin/sh")
}

// TestConsoleTail: the last lines of a console log, or what is wrong with it.
func TestConsoleTail(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "c.log")
	assert.Equal(t, "", consoleTail(log, 2), "a missing log says nothing")
	require.NoError(t, os.WriteFile(log, nil, 0o644))
	assert.Contains(t, consoleTail(log, 2), "is empty")
	require.NoError(t, os.WriteFile(log, []byte("a\nb\nc\n"), 0o644))
	assert.Equal(t, "; the last lines of its console ("+log+"):\n  b\n  c", consoleTail(log, 2))
}

// TestMinimalUnlessBootable: an image without /sbin/init (or one whose
// link points nowhere inside the root) gets stint's minimal init; one with
// an init, and a container with a command, are left alone.
func TestMinimalUnlessBootable(t *testing.T) {
	boot := Request{Init: container.Init{Kind: container.InitBoot, ConsoleLog: "/l"}}
	for _, c := range []struct {
		name  string
		setup func(root string)
		req   Request
		want  container.InitKind
	}{
		{"no /sbin/init", func(string) {}, boot, container.InitMinimal},
		{"an init", func(root string) {
			require.NoError(t, os.MkdirAll(filepath.Join(root, "sbin"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(root, "sbin/init"), nil, 0o755))
		}, boot, container.InitBoot},
		{"a link to the host's init", func(root string) {
			require.NoError(t, os.MkdirAll(filepath.Join(root, "sbin"), 0o755))
			require.NoError(t, os.Symlink("/proc/1/exe", filepath.Join(root, "sbin/init")))
		}, boot, container.InitMinimal},
		{"a command", func(string) {}, Request{Init: container.Init{Kind: container.InitCommand, Command: []string{"x"}}}, container.InitCommand},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			c.setup(root)
			req := c.req
			minimalUnlessBootable(&req, root)
			assert.Equal(t, c.want, req.Init.Kinded())
		})
	}
}

// TestWithin: the caller's directory is where the shell starts only when
// the container has it at the same path.
func TestWithin(t *testing.T) {
	roots := samePath([]spec.Mount{
		{Type: spec.MountBind, Source: "/home/dev/src/app", Target: "/home/dev/src/app"},
		{Type: spec.MountBind, Source: "/home/dev/other", Target: "/src"},
		{Type: spec.MountCache, Name: "c", Target: "/cache"},
	})
	assert.Equal(t, []string{"/home/dev/src/app"}, roots)
	for dir, want := range map[string]string{
		"/home/dev/src/app":       "/home/dev/src/app",
		"/home/dev/src/app/pkg/x": "/home/dev/src/app/pkg/x",
		"/home/dev/src/app2":      "",
		"/home/dev/src":           "",
		"/home/dev/other":         "",
		"":                        "",
	} {
		assert.Equal(t, want, within(dir, roots), dir)
	}
}

// startOnly resolves every reference to an image with start templates.
type startOnly struct{ rendered *[]string }

func (s startOnly) ResolveImage(_ context.Context, ref string) (Image, error) {
	if ref == "gone" {
		return Image{}, errors.New("not in the store")
	}
	return Image{Fingerprint: ref, RenderStart: func(rootfs, name string, privileged bool, uid, gid int) error {
		*s.rendered = append(*s.rendered, fmt.Sprintf("%s %s %v %d:%d", rootfs, name, privileged, uid, gid))
		return nil
	}}, nil
}

// TestRenderStart: a long-lived container's start renders its image's
// start templates with its name, owned by its root; an image gone from the
// store renders nothing and is no error.
func TestRenderStart(t *testing.T) {
	var rendered []string
	b := &LongLived{Runner: &Runner{Images: startOnly{&rendered}, IDMap: idmap.Map{HostUID: 100000, HostGID: 200000, Size: 65536}}}
	require.NoError(t, b.renderStart(context.Background(), "abc", spec.Container{Name: "web"}, "/r"))
	require.NoError(t, b.renderStart(context.Background(), "abc", spec.Container{Name: "priv", Privileged: true}, "/r"))
	require.NoError(t, b.renderStart(context.Background(), "gone", spec.Container{Name: "web"}, "/r"))
	assert.Equal(t, []string{"/r web false 100000:200000", "/r priv true 0:0"}, rendered)
}
