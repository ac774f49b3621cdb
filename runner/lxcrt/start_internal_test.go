package lxcrt

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A start that printed nothing says so without an empty field ("start
// container x: : signal: killed" before); its error stays in the chain.
func TestStartError(t *testing.T) {
	killed := errors.New("signal: killed")
	for _, c := range []struct {
		output, logs, want string
	}{
		{"", "", "start container j1: signal: killed"},
		{" \n\t", "", "start container j1: signal: killed"},
		{"lxc-start: j1: failed to start\n", "", "start container j1: lxc-start: j1: failed to start: signal: killed"},
		{"", "\nlxc log /x/lxc.log:\n  E", "start container j1: signal: killed\nlxc log /x/lxc.log:\n  E"},
	} {
		err := startError("j1", []byte(c.output), killed, c.logs)
		assert.Equal(t, c.want, err.Error())
		assert.ErrorIs(t, err, killed)
	}
}
