package storage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/storage"
)

// TestSweepSparesLiveClones: one process's Sweep (every stint run's gc
// begins with one) never removes the temporary volume of a clone another
// process is making. Two pools on one root stand for the two processes
// (their locks are flocks, as between processes). A clone that lost its
// temporary volume failed with "no such file or directory".
func TestSweepSparesLiveClones(t *testing.T) {
	testenv.RequiresRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	cloner := openPool(t, storage.Config{Driver: "dir", Root: root})
	sweeper := openPool(t, storage.Config{Driver: "dir", Root: root})
	_, err := cloner.CreateGolden(ctx, "g", storage.SourceFunc(func(_ context.Context, dir string) error {
		return os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	}), storage.GoldenOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cloner.Destroy(ctx, "g") }) // before the pools close

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
			}
			if err := sweeper.Sweep(ctx); err != nil {
				t.Errorf("sweep: %v", err)
				return
			}
		}
	}()
	clone := cloner.(storage.TransientCloner)
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		id := fmt.Sprintf("c%d", i)
		_, err := clone.CloneTransient(ctx, "g", id)
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("clone %d with a sweep beside it: %v", i, err)
		}
		require.NoError(t, cloner.Destroy(ctx, id))
	}
	close(stop)
	wg.Wait()
}
