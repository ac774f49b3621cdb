package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCommandWord(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "x.toml"}, "run"},
		{[]string{"--root", "run", "exec"}, "exec"},
		{[]string{"--json", "--remote", "lab", "run"}, "run"},
		{[]string{"--log-level", "debug", "-v", "ps"}, "ps"},
		{[]string{"--root=/r", "exec", "busybox"}, "exec"},
		{[]string{"--", "run"}, ""},
		{[]string{"--json"}, ""},
		{nil, ""},
	} {
		assert.Equal(t, tc.want, commandWord(tc.args), "%q", tc.args)
	}
}
