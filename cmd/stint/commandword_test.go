package main

import (
	"reflect"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// TestGlobalValueFlags: commandWord skips the value of exactly the global
// flags that take one in stint's command line.
func TestGlobalValueFlags(t *testing.T) {
	parser, err := kong.New(&CLI{}, kong.Name("stint"))
	require.NoError(t, err)
	want := map[string]bool{}
	for _, f := range parser.Model.Flags {
		if !f.IsBool() && !f.IsCounter() {
			want["--"+f.Name] = true
			if f.Short != 0 {
				want["-"+string(f.Short)] = true
			}
		}
	}
	require.NotEmpty(t, want)
	assert.Equal(t, want, globalValueFlags)
}

func TestRemoteArg(t *testing.T) {
	none := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		env  string
		want bool
	}{
		{[]string{"run", "x.toml"}, "", false},
		{[]string{"--remote", "lab", "run"}, "", true},
		{[]string{"run", "--remote=lab", "x.toml"}, "", true},
		{[]string{"exec", "busybox", "--", "--remote"}, "", false},
		{[]string{"run"}, "lab", true},
	} {
		getenv := none
		if tc.env != "" {
			getenv = func(k string) string {
				if k == "STINT_REMOTE" {
					return tc.env
				}
				return ""
			}
		}
		assert.Equal(t, tc.want, remoteArg(tc.args, getenv), "%q %q", tc.args, tc.env)
	}
}

// hotCLI's commands are CLI's, with the same types and tags.
func TestHotCLIMatchesCLI(t *testing.T) {
	full := reflect.TypeOf(CLI{})
	hot := reflect.TypeOf(hotCLI{})
	for i := range hot.NumField() {
		hf := hot.Field(i)
		ff, ok := full.FieldByName(hf.Name)
		if assert.True(t, ok, hf.Name) {
			assert.Equal(t, ff.Type, hf.Type, hf.Name)
			assert.Equal(t, ff.Tag, hf.Tag, hf.Name)
		}
	}
}
