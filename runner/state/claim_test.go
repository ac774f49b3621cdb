package state

import (
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReleaseUnlocksForkedCopies: a process forked while a record was held
// (os/exec, liblxc: between fork and exec the child has a copy of every
// descriptor) must not keep the record locked after Release: the record is
// free at once. Closing our descriptor alone left the lock with the copy,
// and a long-lived container's Start after its Create met ErrBusy.
func TestReleaseUnlocksForkedCopies(t *testing.T) {
	for _, end := range []string{"release", "delete"} {
		t.Run(end, func(t *testing.T) {
			s := openTemp(t)
			h, err := s.Create(&Record{Name: "c1", Kind: KindContainer})
			require.NoError(t, err)
			// A child holding a copy of the lock's descriptor, as a fork
			// that has not exec'd yet would.
			child := exec.Command("sleep", "30")
			child.ExtraFiles = []*os.File{h.lock}
			require.NoError(t, child.Start())
			t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
			if end == "release" {
				require.NoError(t, h.Release())
				h2, err := s.Claim("c1")
				require.NoError(t, err, "claim after release, with a copy of the lock in a child")
				require.NoError(t, h2.Release())
			} else {
				require.NoError(t, h.Delete())
				h2, err := s.Create(&Record{Name: "c1", Kind: KindContainer})
				require.NoError(t, err, "create after delete, with a copy of the old lock in a child")
				require.NoError(t, h2.Delete())
			}
		})
	}
}

// TestSweepLeavesLiveRecordsAlone: gc's Sweep never takes the lock of a
// record it has nothing to remove for, so a Claim beside it never meets
// ErrBusy from it.
func TestSweepLeavesLiveRecordsAlone(t *testing.T) {
	s := openTemp(t)
	h, err := s.Create(&Record{Name: "c1", Kind: KindContainer})
	require.NoError(t, err)
	require.NoError(t, h.Release())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = s.Sweep()
			}
		}
	}()
	busy := 0
	for range 500 {
		h, err := s.Claim("c1")
		if errors.Is(err, ErrBusy) {
			busy++
			continue
		}
		require.NoError(t, err)
		require.NoError(t, h.Release())
	}
	close(stop)
	wg.Wait()
	assert.Zero(t, busy, "claims that met Sweep's lock")
}
