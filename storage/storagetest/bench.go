package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stintdev/stint/storage"
)

// BenchClone measures one Clone plus one Destroy of a golden volume holding
// size bytes (in files of at most 64 MiB, real data, no holes). On the
// copy-on-write drivers the time must not grow with size.
func BenchClone(b *testing.B, d storage.Driver, size int64) {
	ctx := context.Background()
	src := storage.SourceFunc(func(_ context.Context, dir string) error {
		chunk := bytes.Repeat([]byte("stint-bench-data"), 64<<20/16)
		for i := 0; size > 0; i++ {
			n := min(size, int64(len(chunk)))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("blob%03d", i)), chunk[:n], 0o644); err != nil {
				return err
			}
			size -= n
		}
		return os.WriteFile(filepath.Join(dir, "hostname"), []byte("bench\n"), 0o644)
	})
	if _, err := d.CreateGolden(ctx, "bench-golden", src, storage.GoldenOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := d.Destroy(context.Background(), "bench-golden"); err != nil {
			b.Errorf("destroy golden: %v", err)
		}
	})
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("bench-%d", i)
		if _, err := d.Clone(ctx, "bench-golden", id); err != nil {
			b.Fatal(err)
		}
		if err := d.Destroy(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
