package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/stintdev/stint/runner/container"
	"github.com/stintdev/stint/spec"
)

// ErrExited means a long-lived container's PID 1 ended right after it
// started: the container's own failure (apply exits 1), not the host's.
var ErrExited = errors.New("PID 1 exited right after the start")

// settleTime is how long a started container's PID 1 must stay alive
// before apply calls it up.
var settleTime = 500 * time.Millisecond

// settle waits settleTime and fails with ErrExited, naming the container
// and the last lines of its console, if it stopped meanwhile.
func (b *LongLived) settle(ctx context.Context, name string) error {
	deadline := time.Now().Add(settleTime)
	for {
		st, err := b.Runner.Runtime.State(ctx, name)
		if err != nil {
			return err
		}
		if st == container.StateStopped || st == container.StateAbsent {
			return fmt.Errorf("container %s: %w%s", name, ErrExited, consoleTail(b.ConsoleLog(name), 10))
		}
		if !time.Now().Before(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// consoleTail is "; its console (log):" and the last n lines of log, or ""
// when it is empty or missing.
func consoleTail(log string, n int) string {
	b, err := os.ReadFile(log)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) == 0 || len(lines[0]) == 0 {
		return fmt.Sprintf("; its console (%s) is empty", log)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("; the last lines of its console (%s):\n  %s", log, bytes.Join(lines, []byte("\n  ")))
}

// minimalUnlessBootable gives a container that would boot its image's init
// stint's minimal init instead when the image has no /sbin/init (a
// debootstrap minbase, busybox): it would die at once otherwise. It
// reports whether it did.
func minimalUnlessBootable(req *Request, rootfs string) bool {
	if req.Init.Kinded() != container.InitBoot || hasInit(rootfs) {
		return false
	}
	req.Init = container.Init{Kind: container.InitMinimal}
	return true
}

// hasInit reports whether the root file system at rootfs has a /sbin/init
// (a symbolic link is followed inside rootfs).
func hasInit(rootfs string) bool {
	p, err := securejoin.SecureJoin(rootfs, "/sbin/init")
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// imageDefaults are the defaults (env, command) of the image container
// was made from, by its fingerprint: none when the image is gone from the
// store (as renderStart).
func (b *LongLived) imageDefaults(ctx context.Context, fingerprint string) ImageDefaults {
	if fingerprint == "" || b.Runner.Images == nil {
		return ImageDefaults{}
	}
	img, err := b.Runner.Images.ResolveImage(ctx, fingerprint)
	if err != nil {
		return ImageDefaults{}
	}
	return img.Defaults
}

// renderStart renders the "start" templates of container c's image (by its
// fingerprint) into its root before a start. An image gone from the store
// (pruned) has none to render.
func (b *LongLived) renderStart(ctx context.Context, fingerprint string, c spec.Container, rootfs string) error {
	r := b.Runner
	if fingerprint == "" || r.Images == nil {
		return nil
	}
	img, err := r.Images.ResolveImage(ctx, fingerprint)
	if err != nil || img.RenderStart == nil {
		return nil
	}
	uid, gid := 0, 0
	if !c.Privileged {
		uid, gid = int(r.IDMap.HostUID), int(r.IDMap.HostGID)
	}
	return img.RenderStart(rootfs, c.Name, c.Privileged, uid, gid)
}

// initUser gives container req's command the image's working directory
// and user (ImageDefaults.applyInitUser), making the directory in rootfs
// when the image lacks it, owned by that user, as for a job.
func (b *LongLived) initUser(d ImageDefaults, req *Request, rootfs string, c spec.Container) error {
	if err := d.applyInitUser(req, rootfs, c); err != nil {
		return err
	}
	if req.Init.Workdir == "" {
		return nil
	}
	u := User{UID: int(req.Init.UID), GID: int(req.Init.GID)}
	if err := b.Runner.makeWorkdir(rootfs, req.Init.Workdir, u, *req); err != nil {
		return fmt.Errorf("container %s: %w", req.Container, err)
	}
	return nil
}
