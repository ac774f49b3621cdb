package images

import (
	"context"
	"errors"
	"fmt"

	"github.com/stintdev/stint/spec"
)

// ErrRecipe: the image is a recipe (from = "..."), which only the runner
// can build (it runs a container); the store cannot.
var ErrRecipe = errors.New("recipe images (from = ...) are built by the runner")

// SpecOptions tune BuildSpec.
type SpecOptions struct {
	Aliases  []string
	Progress func(done, total int64) // copy progress of the import
	Log      func(line string)       // builder output (debootstrap)
}

// BuildSpec makes the image an [image.NAME] table describes: builds it
// (busybox, debootstrap; cached by their inputs) or imports its source.
// A recipe (from) is ErrRecipe.
func BuildSpec(ctx context.Context, s *Store, def spec.Image, opts SpecOptions) (*Image, error) {
	var img *Image
	var err error
	switch {
	case def.Builder == "busybox":
		img, err = BuildBusybox(ctx, s, BusyboxOptions{Aliases: opts.Aliases, Properties: def.Properties, Progress: opts.Progress})
	case def.Builder == "debootstrap":
		img, err = BuildDebootstrap(ctx, s, DebootstrapOptions{
			Suite: def.Suite, Variant: def.Variant, Components: def.Components, Packages: def.Packages,
			Mirror: def.Mirror, Aliases: opts.Aliases, Properties: def.Properties, Log: opts.Log, Progress: opts.Progress,
		})
	case len(def.Source) > 0:
		img, err = s.Import(ctx, def.Source, ImportOptions{Aliases: opts.Aliases, Properties: def.Properties, Progress: opts.Progress})
	case def.From != "":
		err = ErrRecipe
	default:
		err = fmt.Errorf("no builder, source or from")
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", def.Name, err)
	}
	return img, nil
}
