package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/spec"
)

// recipeBuilder builds the recipe images (from = ...) of `stint image
// build`: they run in an ephemeral container, so the runner's environment
// (storage, runtime, state journal) is opened on the first recipe only.
type recipeBuilder struct {
	g    *Globals
	set  *spec.Set
	ctx  context.Context
	stop func()
	env  *env
	si   *runner.StoreImages
}

// build builds [image.NAME] d (and the images it derives from), adding
// aliases. A failing hook is the recipe's fault (exit 1), not the host's.
func (b *recipeBuilder) build(d spec.Image, aliases []string) (*images.Image, error) {
	if b.env == nil {
		b.ctx, b.stop = signalContext(b.g.Stderr)
		e, err := openEnv(b.ctx, b.g, b.set)
		if err != nil {
			return nil, withCode(ExitHost, err)
		}
		b.env = e
		// Hook output, prefixed by the image's name; stdout stays JSON with --json.
		e.runner.Output = b.g.Stdout
		if b.g.JSON {
			e.runner.Output = b.g.Stderr
		}
		if res, err := e.runner.GC(b.ctx, runner.GCOptions{}); err == nil && len(res.Removed) > 0 {
			fmt.Fprintf(b.g.Stderr, "stint: removed %d container(s) left by dead stint processes\n", len(res.Removed))
		}
		b.si = &runner.StoreImages{Store: e.images, Set: b.set, Recipes: e.runner}
	}
	img, err := b.si.Build(b.ctx, d.Name, aliases)
	var hook *runner.HookError
	switch {
	case err == nil:
		return img, nil
	case errors.As(err, &hook):
		return nil, withCode(ExitJobFail, err)
	case b.ctx.Err() != nil:
		return nil, withCode(ExitHost, err)
	}
	return nil, imageErr(err)
}

// Close releases the environment, if one was opened.
func (b *recipeBuilder) Close() {
	if b.env != nil {
		b.env.Close()
		b.stop()
	}
}
