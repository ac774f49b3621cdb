package idmap

import (
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
)

// TestIdmappedMounts makes a real idmapped mount of a throwaway tmpfs. The
// hosts stint is tested on run Linux 6.3 or later (tmpfs gained idmapped
// mounts then), so anything but "yes" is a failure here.
func TestIdmappedMounts(t *testing.T) {
	testenv.RequiresRoot(t)
	testenv.RequiresTool(t, "sleep")
	ok, err := IdmappedMounts()
	require.NoError(t, err)
	assert.True(t, ok)
}

// TestIdmappedMountsNotRoot: without root the probe says it could not run,
// not that the kernel lacks the feature.
func TestIdmappedMountsNotRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs as a user without root; the root case is TestIdmappedMounts")
	}
	ok, err := IdmappedMounts()
	assert.False(t, ok)
	require.Error(t, err)
	assert.False(t, errors.Is(err, errors.ErrUnsupported), "%v", err)
}
