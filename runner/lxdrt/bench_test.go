package lxdrt_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stintdev/stint/internal/lxdenv"
	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/runner/lxdrt"
)

// BenchmarkJob compares one job's cost on a private LXD: stint's runtime
// (create, start, one exec, destroy) against the bare lxc CLI sequence for
// the same work (launch --ephemeral, exec, stop). Report the ratio of the
// two ns/op (the bound: stint within 1.2x).
//
//	sudo go test ./runner/lxdrt -run '^$' -bench Job -benchtime 10x
func BenchmarkJob(b *testing.B) {
	d := lxdenv.StartDaemon(b)
	c := connect(b, d)
	rt, err := lxdrt.New(c, lxdrt.Options{Remote: "bench", Owner: fmt.Sprintf("bench:%d", os.Getpid())})
	if err != nil {
		b.Fatal(err)
	}
	img := busybox(b)
	ctx := context.Background()
	// Warm up: the image upload is a one-off cost.
	warm := fmt.Sprintf("warm-%d", os.Getpid())
	if err := rt.Create(ctx, warm, container.Config{Root: container.Root{Image: img}}); err != nil {
		b.Fatal(err)
	}
	_ = rt.Destroy(ctx, warm)

	b.Run("stint", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			name := fmt.Sprintf("bs-%d-%d", os.Getpid(), i)
			if err := rt.Create(ctx, name, container.Config{Root: container.Root{Image: img}}); err != nil {
				b.Fatal(err)
			}
			if err := rt.Start(ctx, name); err != nil {
				b.Fatal(err)
			}
			st, err := rt.Exec(ctx, name, container.ExecOptions{Argv: []string{"/bin/true"}})
			if err != nil || !st.Success() {
				b.Fatal(err, st)
			}
			if err := rt.Destroy(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lxc-cli", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			name := fmt.Sprintf("bl-%d-%d", os.Getpid(), i)
			d.MustLxc(b, "launch", "--ephemeral", img.Fingerprint, name)
			d.MustLxc(b, "exec", name, "--", "/bin/true")
			d.MustLxc(b, "stop", "--force", name)
		}
	})
}
