package runner

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTailWriter(t *testing.T) {
	var tw tailWriter
	for i := 1; i <= 25; i++ {
		fmt.Fprintf(&tw, "line %d\n", i)
	}
	fmt.Fprint(&tw, "progress 10%\rprogress 99%\r\nend without newline")
	got := tw.Tail()
	assert.Len(t, got, tailLines)
	assert.Equal(t, "line 8", got[0])
	assert.Equal(t, []string{"line 25", "progress 99%", "end without newline"}, got[len(got)-3:], "a \\r starts the line over, as on a terminal")

	tw = tailWriter{}
	fmt.Fprint(&tw, strings.Repeat("x", 2*maxTailLine)+"\n")
	assert.Len(t, tw.Tail()[0], maxTailLine, "a long line is cut")
}

func TestBuildLogError(t *testing.T) {
	hook := &HookError{Image: "b", Hook: "fail.sh", Index: 1}
	err := error(&BuildLogError{Err: hook, Log: "/r/logs/stint-image-b-1.log", Tail: []string{"one", "two"}})
	assert.Equal(t, "image b: hook 1 fail.sh: exit 0; build log: /r/logs/stint-image-b-1.log, ending:\n    | one\n    | two", err.Error())
	var he *HookError
	assert.True(t, errors.As(err, &he), "the hook's error stays reachable")
	assert.Equal(t, "image b: hook 1 fail.sh: exit 0; build log: /l", (&BuildLogError{Err: hook, Log: "/l"}).Error(), "streamed: no tail")
}
