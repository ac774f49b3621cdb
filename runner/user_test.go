package runner

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLookupUser(t *testing.T) {
	cases := []struct {
		name string
		want User
		err  string
	}{
		{"", User{Name: "root", Home: "/root", Shell: "/bin/sh", Groups: []int{10}}, ""},
		{"app", User{Name: "app", UID: 1000, GID: 1000, Home: "/home/app", Shell: "/bin/sh", Groups: []int{10}}, ""},
		{"1000", User{Name: "app", UID: 1000, GID: 1000, Home: "/home/app", Shell: "/bin/sh", Groups: []int{10}}, ""},
		{"4242", User{UID: 4242, GID: 4242, Home: "/"}, ""},
		{"nobody", User{}, "not in the container's /etc/passwd"},
	}
	for _, c := range cases {
		u, err := LookupUser("testdata/passwd", c.name)
		if c.err != "" {
			require.ErrorContains(t, err, c.err)
			continue
		}
		require.NoError(t, err, c.name)
		assert.Equal(t, c.want, u, c.name)
	}
}

func TestJobEnv(t *testing.T) {
	u := User{Home: "/home/app"}
	assert.Equal(t, []string{"A=1", "HOME=/home/app", "PATH=" + DefaultPath, "TERM=dumb"}, JobEnv(map[string]string{"A": "1"}, u))
	assert.Equal(t, []string{"HOME=/h", "PATH=/x", "TERM=dumb"}, JobEnv(map[string]string{"PATH": "/x", "HOME": "/h"}, u))
}
