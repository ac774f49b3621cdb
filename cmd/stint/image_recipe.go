package main

import (
	"context"
	"errors"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/spec"
)

// recipeBuilder builds the recipe images (from = ...) of `stint image
// build`: they run in an ephemeral container, so the Host is opened for
// containers on the first recipe only.
type recipeBuilder struct {
	g    *Globals
	set  *spec.Set
	ctx  context.Context
	stop func()
	h    *runner.Host
}

// build builds [image.NAME] d (and the images it derives from), adding
// aliases. A failing hook is the recipe's fault (exit 1), not the host's.
func (b *recipeBuilder) build(d spec.Image, aliases []string) (*images.Image, error) {
	if b.h == nil {
		b.ctx, b.stop = signalContext(b.g.Stderr)
		h, err := b.g.openHost(b.ctx, runner.Options{Containers: true, Set: b.set})
		if err != nil {
			return nil, err
		}
		b.h = h
		gcFirst(b.ctx, b.g, h)
	}
	// With -v, the build's output, prefixed by the image's name; stdout
	// stays JSON with --json.
	out := b.g.Stdout
	if b.g.JSON {
		out = b.g.Stderr
	}
	img, err := b.h.BuildImage(b.ctx, d.Name, aliases, b.g.buildOutput(out))
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

// Close releases the Host, if one was opened.
func (b *recipeBuilder) Close() {
	if b.h != nil {
		b.h.Close()
		b.stop()
	}
}
