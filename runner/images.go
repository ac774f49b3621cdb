package runner

import (
	"context"
	"fmt"
	"sync"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/spec"
	"github.com/stintdev/stint/storage"
)

// StoreImages resolves job images through the local image store: an
// [image.*] of the set is built (busybox) or imported (source) on first use,
// anything else is an alias or fingerprint prefix already in the store.
type StoreImages struct {
	Store *images.Store
	Set   *spec.Set // may be nil (stint exec)
	// Recipes builds images with `from` in its containers (see recipe.go);
	// nil refuses them.
	Recipes *Runner

	mu    sync.Mutex // guards done and refMu
	done  map[string]*images.Image
	refMu map[string]*sync.Mutex // one build or import per image at a time
}

var _ ImageResolver = (*StoreImages)(nil)

// ResolveImage implements ImageResolver.
func (s *StoreImages) ResolveImage(ctx context.Context, ref string) (Image, error) {
	// A lock per reference, not one for all: a recipe resolves its base
	// while its own reference is locked.
	s.mu.Lock()
	if s.refMu == nil {
		s.refMu, s.done = map[string]*sync.Mutex{}, map[string]*images.Image{}
	}
	mu := s.refMu[ref]
	if mu == nil {
		mu = &sync.Mutex{}
		s.refMu[ref] = mu
	}
	s.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()

	s.mu.Lock()
	img := s.done[ref]
	s.mu.Unlock()
	if img != nil {
		return s.image(img), nil
	}
	img, err := s.resolve(ctx, ref)
	if err != nil {
		return Image{}, err
	}
	s.mu.Lock()
	s.done[ref] = img
	s.mu.Unlock()
	return s.image(img), nil
}

func (s *StoreImages) resolve(ctx context.Context, ref string) (*images.Image, error) {
	if s.Set != nil {
		for _, def := range s.Set.Images {
			if def.Name != ref {
				continue
			}
			if def.From != "" {
				return s.buildRecipe(ctx, def, nil)
			}
			// busybox and debootstrap builds are cached by their inputs;
			// a source is imported once (same fingerprint).
			img, err := images.BuildSpec(ctx, s.Store, def, images.SpecOptions{})
			if err != nil {
				return nil, fmt.Errorf("build image %s: %w", ref, err)
			}
			return img, nil
		}
	}
	img, err := s.Store.Resolve(ref)
	if err != nil {
		return nil, err // names the image already
	}
	return img, nil
}

func (s *StoreImages) image(img *images.Image) Image {
	return Image{
		Fingerprint: img.Fingerprint,
		Source: storage.SourceFunc(func(ctx context.Context, dir string) error {
			// Devices are skipped: unprivileged containers cannot use image
			// device nodes, and LXC's autodev makes /dev for every container.
			_, err := s.Store.Unpack(ctx, img, dir, images.UnpackOptions{SkipDevices: true})
			return err
		}),
		// LXD's "create" templates (/etc/hostname, ...) render into each
		// clone, owned by the container's root.
		Render: func(rootfs, name string, privileged bool, uid, gid int) error {
			return images.RenderTemplates(img, rootfs, images.TriggerCreate, images.TemplateContext{
				Name: name, Privileged: privileged, Ephemeral: true, UID: uid, GID: gid,
			})
		},
		RenderStart: func(rootfs, name string, privileged bool, uid, gid int) error {
			return images.RenderTemplates(img, rootfs, images.TriggerStart, images.TemplateContext{
				Name: name, Privileged: privileged, UID: uid, GID: gid,
			})
		},
	}
}
