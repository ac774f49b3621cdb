package gitlab

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// ImageError is an image a job may not have: unknown, or not allowed by the
// driver config. It wraps ErrImageUnknown or ErrImageNotAllowed.
type ImageError struct {
	Requested string // as the job wrote it
	Ref       string // the reference it resolved to, if any
	Err       error
}

func (e *ImageError) Error() string {
	if e.Ref != "" && e.Ref != e.Requested {
		return fmt.Sprintf("image %q (%s): %v", e.Requested, e.Ref, e.Err)
	}
	return fmt.Sprintf("image %q: %v", e.Requested, e.Err)
}

func (e *ImageError) Unwrap() error { return e.Err }

// ChooseImage turns the image a job asks for (CI_JOB_IMAGE, or a service's
// name) into the stint reference its container is made from:
//
//   - empty: the config's default_image (an error when there is none);
//   - "REMOTE:rest" where REMOTE is a configured remote: as is;
//   - a local alias or fingerprint the store has: as is;
//   - otherwise, with a default_remote: "<default_remote>:<requested>", so
//     that "alpine:3.20" works with an OCI remote as the default.
//
// The result must then pass Config.ImageAllowed (patterns match the chosen
// reference, not the requested text). Errors are *ImageError, or the
// engine's lookup failure.
func ChooseImage(ctx context.Context, cfg *Config, eng Engine, requested string) (string, error) {
	requested = strings.TrimSpace(requested)
	if requested == "" {
		if cfg.DefaultImage == "" {
			return "", &ImageError{Err: fmt.Errorf("%w: the job names no image and the driver config has no default_image", ErrImageUnknown)}
		}
		requested = cfg.DefaultImage
	}
	ref, err := resolveImage(ctx, cfg, eng, requested)
	if err != nil {
		return "", err
	}
	if !cfg.ImageAllowed(ref) {
		return "", &ImageError{Requested: requested, Ref: ref,
			Err: fmt.Errorf("%w (allowed_images in %s)", ErrImageNotAllowed, cfg.File)}
	}
	return ref, nil
}

func resolveImage(ctx context.Context, cfg *Config, eng Engine, requested string) (string, error) {
	remotes, err := eng.Remotes(ctx)
	if err != nil {
		return "", fmt.Errorf("list image remotes: %w", err)
	}
	if prefix, _, ok := strings.Cut(requested, ":"); ok && slices.Contains(remotes, prefix) {
		return requested, nil
	}
	local, err := eng.HasImage(ctx, requested)
	if err != nil {
		return "", fmt.Errorf("look up image %q: %w", requested, err)
	}
	switch {
	case local:
		return requested, nil
	case cfg.DefaultRemote != "" && slices.Contains(remotes, cfg.DefaultRemote):
		return cfg.DefaultRemote + ":" + requested, nil
	case cfg.DefaultRemote != "":
		return "", &ImageError{Requested: requested,
			Err: fmt.Errorf("%w: not in the local store, and default_remote %q is no configured remote", ErrImageUnknown, cfg.DefaultRemote)}
	}
	return "", &ImageError{Requested: requested,
		Err: fmt.Errorf("%w: not in the local store, and the driver config has no default_remote", ErrImageUnknown)}
}
