package runner

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImageDefaultsApply: the image's env goes under the spec's (a spec
// key wins), its working directory and user fill what the spec left
// unset; a long-lived container and a host_user job are left alone.
func TestImageDefaultsApply(t *testing.T) {
	d := ImageDefaults{Env: []string{"PATH=/bin", "A=image", "B=image", "junk"}, Workdir: "/srv", User: "app:staff"}
	got := d.apply(Request{Kind: state.KindJob, Env: map[string]string{"B": "spec"}})
	assert.Equal(t, map[string]string{"PATH": "/bin", "A": "image", "B": "spec"}, got.Env)
	assert.Equal(t, "/srv", got.Workdir)
	assert.Equal(t, "app", got.User)
	assert.Equal(t, "staff", got.Group)

	got = d.apply(Request{Kind: state.KindJob, Workdir: "/w", User: "root"})
	assert.Equal(t, "/w", got.Workdir)
	assert.Equal(t, "root", got.User)
	assert.Empty(t, got.Group)

	assert.Empty(t, d.apply(Request{Kind: state.KindJob, HostUser: true}).User)
	c := d.apply(Request{Kind: state.KindContainer})
	assert.Empty(t, c.Env)
	assert.Empty(t, c.Workdir)

	env := map[string]string{"B": "spec"}
	d.apply(Request{Kind: state.KindJob, Env: env})
	assert.Equal(t, map[string]string{"B": "spec"}, env, "the spec's map is not written to")
}

// TestImageDefaultsApplyInit: a long-lived container's PID 1 gets the
// image's env under the spec's and, without a spec command, the image's
// Entrypoint and Cmd; a spec command wins; an OCI image with neither a
// command nor a /sbin/init is a usage error (ErrNoCommand), one with an
// init boots it, and a non-OCI image without one is left to the minimal
// init.
func TestImageDefaultsApplyInit(t *testing.T) {
	bare := t.TempDir()
	booting := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(booting, "sbin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(booting, "sbin/init"), nil, 0o755))
	boot := func(env ...string) Request {
		return Request{Container: "s.web", Image: "oci-layout:/l:v1", Kind: state.KindContainer,
			Init: container.Init{Kind: container.InitBoot, Env: env}}
	}
	d := ImageDefaults{Env: []string{"PATH=/bin", "OVER=image", "junk"}, Command: []string{"/bin/sh", "-c", "run"}, OCI: true}

	req := boot("OVER=spec", "Z=spec")
	require.NoError(t, d.applyInit(&req, bare))
	assert.Equal(t, container.Init{Kind: container.InitCommand, Command: []string{"/bin/sh", "-c", "run"},
		Env: []string{"OVER=spec", "PATH=/bin", "Z=spec"}}, req.Init)

	req = boot()
	req.Init.Kind, req.Init.Command = container.InitCommand, []string{"own"}
	require.NoError(t, d.applyInit(&req, bare))
	assert.Equal(t, []string{"own"}, req.Init.Command, "the spec's command wins")

	noCmd := ImageDefaults{OCI: true}
	req = boot()
	err := noCmd.applyInit(&req, bare)
	require.ErrorIs(t, err, ErrNoCommand)
	var ue *UsageError
	require.ErrorAs(t, err, &ue)
	assert.ErrorContains(t, err, "container s.web: image oci-layout:/l:v1: nothing to run")

	req = boot()
	require.NoError(t, noCmd.applyInit(&req, booting))
	assert.Equal(t, container.InitBoot, req.Init.Kinded(), "an OCI image with an init boots it")

	req = boot()
	require.NoError(t, ImageDefaults{}.applyInit(&req, bare))
	assert.Equal(t, boot(), req, "a non-OCI image changes nothing")
}

// TestWithGroup: a gid or a name in the image's /etc/group becomes the
// primary group; an unknown name is an error naming it.
func TestWithGroup(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nstaff:x:50:app\n"), 0o644))
	u := User{Name: "app", UID: 1000, GID: 1000}
	got, err := withGroup(root, u, "")
	require.NoError(t, err)
	assert.Equal(t, 1000, got.GID)
	got, err = withGroup(root, u, "42")
	require.NoError(t, err)
	assert.Equal(t, 42, got.GID)
	got, err = withGroup(root, u, "staff")
	require.NoError(t, err)
	assert.Equal(t, 50, got.GID)
	_, err = withGroup(root, u, "nosuch")
	require.ErrorContains(t, err, "group nosuch: not in the container's /etc/group")
}

// TestImageDefaultsApplyInitUser: a long-lived container's command gets
// the image's working directory and user (looked up in the image, HOME
// too) unless the spec sets its own workdir, user or host_user; a booted
// init is left alone; an unknown user is an error naming the container.
func TestImageDefaultsApplyInitUser(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644))
	d := ImageDefaults{Workdir: "srv/app", User: "app", OCI: true}
	cmd := container.Init{Kind: container.InitCommand, Command: []string{"run"}, Env: []string{"A=1"}}
	for _, tc := range []struct {
		name string
		d    ImageDefaults
		init container.Init
		c    spec.Container
		want container.Init
	}{
		{"image's", d, cmd, spec.Container{},
			container.Init{Kind: container.InitCommand, Command: []string{"run"}, Env: []string{"A=1", "HOME=/home/app"}, Workdir: "/srv/app", UID: 1000, GID: 1001}},
		{"uid:group", ImageDefaults{User: "1234:staff"}, cmd, spec.Container{},
			container.Init{Kind: container.InitCommand, Command: []string{"run"}, Env: []string{"A=1", "HOME=/"}, UID: 1234, GID: 50}},
		{"env's HOME", d, container.Init{Kind: container.InitCommand, Env: []string{"HOME=/h"}}, spec.Container{},
			container.Init{Kind: container.InitCommand, Env: []string{"HOME=/h"}, Workdir: "/srv/app", UID: 1000, GID: 1001}},
		{"spec's workdir and user", d, cmd, spec.Container{Workdir: "/w", User: "root"}, cmd},
		{"host_user", ImageDefaults{User: "app"}, cmd, spec.Container{HostUser: true}, cmd},
		{"boot", d, container.Init{Kind: container.InitBoot}, spec.Container{}, container.Init{Kind: container.InitBoot}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := Request{Container: "s.web", Image: "img", Kind: state.KindContainer, Init: tc.init}
			req.Init.Env = slices.Clone(tc.init.Env)
			require.NoError(t, tc.d.applyInitUser(&req, root, tc.c))
			assert.Equal(t, tc.want, req.Init)
		})
	}
	req := Request{Container: "s.web", Image: "img", Kind: state.KindContainer, Init: cmd}
	err := ImageDefaults{User: "nobody"}.applyInitUser(&req, root, spec.Container{})
	assert.ErrorContains(t, err, "container s.web: image img: user nobody")
}
