package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExecUnknownImage: exec checks its image like run does, before touching
// the host: an unknown image is a usage error (2), named once, with or
// without a local image store yet; nothing is opened under --root.
func TestExecUnknownImage(t *testing.T) {
	for _, withStore := range []bool{false, true} {
		root := t.TempDir()
		if withStore {
			require.NoError(t, os.MkdirAll(filepath.Join(root, "images"), 0o700))
		}
		var out, errb bytes.Buffer
		code := run([]string{"--root", root, "exec", "nosuchimage", "--", "true"}, &out, &errb)
		assert.Equal(t, ExitUsage, code, "store %v: %s", withStore, errb.String())
		assert.Contains(t, errb.String(), `stint exec: image "nosuchimage" not found (stint image list shows the local images)`)
		assert.Equal(t, 1, strings.Count(errb.String(), "nosuchimage"), "the message stutters:\n%s", errb.String())
		_, err := os.Stat(filepath.Join(root, "state"))
		assert.True(t, os.IsNotExist(err), "exec opened the host before checking its image")
	}
}
