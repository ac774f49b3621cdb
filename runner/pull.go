package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/oci"
	"github.com/stintdev/stint/images/pull"
	"github.com/stintdev/stint/images/simplestreams"
	"github.com/stintdev/stint/remote"
)

// PullOptions tune PullImage.
type PullOptions struct {
	Aliases     []string // local aliases for the pulled image
	MoveAliases bool     // take them from the image that has them
	// Progress is called per downloaded file or blob.
	Progress func(item string, done, total int64)
}

// IsPullRef reports whether ref names an image on a remote: an
// "oci-layout:" reference, or REMOTE:ALIAS with REMOTE an image remote
// (simplestreams or oci) stored under root. A local alias or fingerprint
// is not one, even with a ':' in it.
func IsPullRef(root, ref string) bool {
	if strings.HasPrefix(ref, oci.LayoutPrefix) {
		return true
	}
	_, _, err := imageRemote(root, ref)
	return err == nil
}

// imageRemote looks up the image remote of a REMOTE:ALIAS reference.
func imageRemote(root, ref string) (images.Remote, string, error) {
	name, alias, ok := pull.SplitRef(ref)
	if !ok {
		return images.Remote{}, "", fmt.Errorf("image %q: %w: want REMOTE:ALIAS or oci-layout:/path[:tag]", ref, images.ErrInvalidRemote)
	}
	r, err := getRemote(root, name)
	var ue *remote.UsageError
	if errors.As(err, &ue) { // an unknown remote: a bad reference
		return images.Remote{}, "", fmt.Errorf("image %q: %w: %w", ref, images.ErrInvalidRemote, err)
	}
	if err != nil {
		return images.Remote{}, "", fmt.Errorf("image %q: %w", ref, err)
	}
	switch r.Protocol {
	case remote.ProtocolSimplestreams, remote.ProtocolOCI:
	default:
		return images.Remote{}, "", fmt.Errorf("image %q: %w: remote %s serves no images (protocol %s)", ref, images.ErrInvalidRemote, name, r.Protocol)
	}
	return images.Remote{Name: r.Name, URL: r.URL, Protocol: images.Protocol(r.Protocol), Insecure: r.Insecure}, alias, nil
}

// getRemote is the remote called name under root, without creating
// <root>/remotes when no remote was ever added (a preset then).
func getRemote(root, name string) (remote.Remote, error) {
	if _, err := os.Stat(filepath.Join(root, "remotes")); errors.Is(err, fs.ErrNotExist) {
		i := slices.IndexFunc(remote.Presets, func(r remote.Remote) bool { return r.Name == name })
		if i < 0 {
			return remote.Remote{}, &remote.UsageError{Remote: name, Err: remote.ErrUnknown}
		}
		return remote.Presets[i], nil
	}
	rs, err := remote.Open(root)
	if err != nil {
		return remote.Remote{}, err
	}
	return rs.Get(name)
}

// PullImage pulls ref (REMOTE:ALIAS with REMOTE stored under root, or
// oci-layout:/path[:tag]) into s. An image already stored under the same
// fingerprint or manifest digest is not downloaded again. Errors are
// typed as package images documents them.
func PullImage(ctx context.Context, s *images.Store, root, ref string, o PullOptions) (*pull.Result, error) {
	if strings.HasPrefix(ref, oci.LayoutPrefix) {
		res, err := oci.Pull(ctx, s, ref, oci.Options{Aliases: o.Aliases, MoveAliases: o.MoveAliases, SkipDevices: true, Progress: o.Progress})
		if err != nil {
			return nil, fmt.Errorf("pull image %s: %w", ref, err)
		}
		return &pull.Result{Image: res.Image, Defaults: res.Defaults}, nil
	}
	r, alias, err := imageRemote(root, ref)
	if err != nil {
		return nil, err
	}
	res, err := pull.Pull(ctx, s, r, alias, pull.Options{Aliases: o.Aliases, MoveAliases: o.MoveAliases, SkipDevices: true, Progress: o.Progress})
	if err != nil {
		return nil, fmt.Errorf("pull image %s: %w", ref, err)
	}
	return res, nil
}

// ServeImages serves s as a simplestreams remote on l until ctx is done,
// over TLS when certFile and keyFile are given (simplestreams.Serve).
func ServeImages(ctx context.Context, s *images.Store, l net.Listener, certFile, keyFile string) error {
	return simplestreams.Serve(ctx, s, l, certFile, keyFile)
}
