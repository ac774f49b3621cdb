package runner

import (
	"sync"
	"testing"

	"github.com/stintdev/stint/storage"
)

// Two stint processes on one root remember storage at the same time (each
// run does); a shared temporary name made one rename fail.
func TestRememberStorageConcurrent(t *testing.T) {
	h := &Host{layout: Layout{Root: t.TempDir()}}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := storage.Config{Driver: "overlay"}
			if i%2 == 1 {
				cfg.Driver = "dir"
			}
			errs <- h.rememberStorage(cfg)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := h.rememberedStorage(); !ok || err != nil {
		t.Fatalf("remembered storage: ok %v, err %v", ok, err)
	}
}
