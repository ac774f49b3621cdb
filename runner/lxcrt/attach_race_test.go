package lxcrt_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stintdev/stint/runner/container"
)

// TestAttachBesideCgroupRemoval: attaches (the attach helper) to a running
// container while another stint's gc removes the empty cgroups of a name it
// has no record of: this one's (cross-root gc, issue 18's 1 in 7,000).
// liblxc's attach makes an empty ".lxc" leaf in the container's cgroup2
// cgroup and moves the process in a moment later; a removal in between
// made liblxc _exit(1) in the helper, with no result and nothing in the
// log ("attach helper failed: exit status 1 (no result: EOF)"). Every exec
// must succeed.
func TestAttachBesideCgroupRemoval(t *testing.T) {
	f := newFixture(t, false)
	f.start(t, "race", container.Config{})
	ctx := context.Background()
	stop := make(chan struct{})
	var removals atomic.Int64
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
			_ = f.rt.RemoveCgroups("race") // busy for the populated ones: fine
			removals.Add(1)
		}
	}()
	var failed atomic.Int64
	var execs sync.WaitGroup
	for range 3 {
		execs.Add(1)
		go func() {
			defer execs.Done()
			for range 40 {
				st, err := f.rt.Exec(ctx, "race", container.ExecOptions{Argv: []string{"/bin/sh", "-c", "exit 0"}})
				if err != nil || !st.Success() {
					failed.Add(1)
					t.Logf("exec: %v (status %+v)", err, st)
				}
			}
		}()
	}
	execs.Wait()
	close(stop)
	wg.Wait()
	assert.Zero(t, failed.Load(), "execs failed beside %d cgroup removals", removals.Load())
}
