package storage

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stintdev/stint/internal/sysexec"
)

// TestNotFoundClassified: zfs and lvm say "not found" their own way; the
// drivers classify it once, and any other failure (a busy pool, a broken
// device-mapper, a killed command) stays an error, never "already gone".
func TestNotFoundClassified(t *testing.T) {
	for _, tt := range []struct {
		name      string
		classify  func(error) bool
		exit      int
		stderr    string
		wantFound bool
	}{
		{"zfs missing dataset", zfsNotFound, 1, "cannot open 'tank/stint/c1': dataset does not exist", true},
		{"zfs busy", zfsNotFound, 1, "cannot open 'tank/stint': pool I/O is currently suspended", false},
		{"zfs killed", zfsNotFound, -1, "", false},
		{"lvm missing lv", lvmNotFound, 5, `  Failed to find logical volume "vg0/c1"`, true},
		{"lvm missing vg", lvmNotFound, 5, `  Volume group "vg0" not found`, true},
		{"lvm locking", lvmNotFound, 5, "  Reading VG vg0 without a lock.", false},
		{"lvm other exit", lvmNotFound, 3, `  Failed to find logical volume "vg0/c1"`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", &sysexec.Error{Cmd: []string{"x"}, ExitCode: tt.exit, Stderr: tt.stderr, Err: errors.New("exit")})
			assert.Equal(t, tt.wantFound, tt.classify(err))
		})
	}
	assert.False(t, zfsNotFound(nil))
	assert.False(t, lvmNotFound(errors.New("not a command error")))
}
