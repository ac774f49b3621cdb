package hostuser

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
)

var dev = User{Name: "dev", UID: 4242, GID: 4242, Group: "dev", Shell: "/bin/bash", Home: "/home/dev"}

// TestInvoking: who the host user is, by sudo's variables or the owner of
// the spec directory, over testdata/host/{passwd,group}.
func TestInvoking(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     map[string]string
		owner   int // chown the spec directory (root only); -1: leave it
		want    User
		wantErr error
		msg     string
	}{
		{name: "sudo", env: map[string]string{"SUDO_UID": "4242", "SUDO_GID": "4242", "SUDO_USER": "dev"}, owner: -1, want: dev},
		{name: "sudo without SUDO_USER", env: map[string]string{"SUDO_UID": "4242", "SUDO_GID": "4242"}, owner: -1, want: dev},
		{name: "sudo after newgrp", env: map[string]string{"SUDO_UID": "4242", "SUDO_GID": "5000", "SUDO_USER": "dev"}, owner: -1,
			want: User{Name: "dev", UID: 4242, GID: 5000, Group: "staff", Shell: "/bin/bash", Home: "/home/dev"}},
		{name: "no shell means /bin/sh", env: map[string]string{"SUDO_UID": "4343", "SUDO_GID": "4343"}, owner: -1,
			want: User{Name: "noshell", UID: 4343, GID: 4343, Group: "noshell", Shell: "/bin/sh", Home: "/home/noshell"}},
		{name: "a gid without a name is the user's group", env: map[string]string{"SUDO_UID": "4444", "SUDO_GID": "4445"}, owner: -1,
			want: User{Name: "nogroupname", UID: 4444, GID: 4445, Group: "nogroupname", Shell: "/bin/zsh", Home: "/home/nogroupname"}},
		{name: "SUDO_UID not a number", env: map[string]string{"SUDO_UID": "42a", "SUDO_GID": "4242"}, owner: -1, wantErr: ErrSudoEnv,
			msg: `host user: SUDO_UID "42a": bad sudo environment: not a decimal id`},
		{name: "SUDO_UID negative", env: map[string]string{"SUDO_UID": "-1", "SUDO_GID": "4242"}, owner: -1, wantErr: ErrSudoEnv},
		{name: "SUDO_UID with a space", env: map[string]string{"SUDO_UID": " 4242", "SUDO_GID": "4242"}, owner: -1, wantErr: ErrSudoEnv},
		{name: "SUDO_UID -1 unsigned", env: map[string]string{"SUDO_UID": "4294967295", "SUDO_GID": "4242"}, owner: -1, wantErr: ErrSudoEnv},
		{name: "SUDO_UID too big", env: map[string]string{"SUDO_UID": "99999999999", "SUDO_GID": "4242"}, owner: -1, wantErr: ErrSudoEnv},
		{name: "SUDO_GID missing", env: map[string]string{"SUDO_UID": "4242"}, owner: -1, wantErr: ErrSudoEnv},
		{name: "SUDO_GID root", env: map[string]string{"SUDO_UID": "4242", "SUDO_GID": "0"}, owner: -1, wantErr: ErrSudoEnv,
			msg: "host user: SUDO_GID is 0: bad sudo environment: root's group is never mapped"},
		{name: "SUDO_USER disagrees", env: map[string]string{"SUDO_UID": "4242", "SUDO_GID": "4242", "SUDO_USER": "root"}, owner: -1, wantErr: ErrSudoEnv,
			msg: `host user: SUDO_USER "root" but uid 4242 is "dev": bad sudo environment`},
		{name: "unknown uid", env: map[string]string{"SUDO_UID": "9999", "SUDO_GID": "9999"}, owner: -1, wantErr: ErrUnknown},
		{name: "a name useradd would refuse", env: map[string]string{"SUDO_UID": "4646", "SUDO_GID": "4646"}, owner: -1,
			msg: `host user: SUDO_UID 4646: uid 4646: user name "bad name": not a portable user name`},
		{name: "root's sudo asks the spec directory", env: map[string]string{"SUDO_UID": "0", "SUDO_GID": "0", "SUDO_USER": "root"}, owner: 4242, want: dev},
		{name: "no sudo: the spec directory's owner", owner: 4242, want: dev},
		{name: "no sudo, root's spec directory", owner: 0, wantErr: ErrRoot},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.owner >= 0 {
				testenv.RequiresRoot(t)
				require.NoError(t, os.Chown(dir, c.owner, c.owner))
			}
			u, err := Invoking(Options{
				Getenv:  func(k string) string { return c.env[k] },
				SpecDir: dir,
				Passwd:  "testdata/host/passwd",
				Group:   "testdata/host/group",
			})
			if c.wantErr != nil || c.msg != "" {
				require.Error(t, err)
				if c.wantErr != nil {
					assert.ErrorIs(t, err, c.wantErr)
				}
				if c.msg != "" {
					assert.Equal(t, c.msg, err.Error())
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, u)
		})
	}
}

// TestInvokingNoSpecDir: neither sudo nor a directory names anyone.
func TestInvokingNoSpecDir(t *testing.T) {
	_, err := Invoking(Options{Getenv: func(string) string { return "" }, Passwd: "testdata/host/passwd"})
	assert.ErrorIs(t, err, ErrRoot)
	_, err = Invoking(Options{Getenv: func(string) string { return "" }, SpecDir: filepath.Join(t.TempDir(), "gone")})
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.False(t, errors.Is(err, ErrRoot))
}
