package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

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

// DefaultRefresh is how often an auto-updating image is checked against
// its remote at most, as LXD's images.auto_update_interval (6 hours).
const DefaultRefresh = 6 * time.Hour

// DefaultCheckTimeout bounds asking a remote whether it has a newer
// version, so an unreachable remote delays a job by no more than this.
const DefaultCheckTimeout = 15 * time.Second

// RefreshOptions tune RefreshImage.
type RefreshOptions struct {
	// CheckTimeout bounds the question to the remote (default
	// DefaultCheckTimeout); a newer image's download is bounded only by
	// the pull's idle timeout.
	CheckTimeout time.Duration
	// Progress is called per downloaded file or blob.
	Progress func(item string, done, total int64)
}

// RefreshImage asks the remote img was pulled from (a REMOTE:ALIAS under
// root, or a local OCI layout) whether it has a newer version, and pulls
// it when it does: img's aliases move to the new image, which keeps img's
// auto_update. It returns the image to use now (img when nothing newer)
// and whether it is new. img itself stays in the store, unaliased, for
// the containers made from it, until `image prune` removes it. The check
// time is recorded either way.
func RefreshImage(ctx context.Context, s *images.Store, root string, img *images.Image, o RefreshOptions) (*images.Image, bool, error) {
	src := img.Source
	if src == nil {
		return img, false, fmt.Errorf("refresh image %s: %w: not pulled from a remote", img.Fingerprint, images.ErrInvalidRemote)
	}
	timeout := cmp.Or(o.CheckTimeout, DefaultCheckTimeout)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	newer, err := checkImage(cctx, root, img)
	cancel()
	if err != nil {
		if cctx.Err() != nil && ctx.Err() == nil && !errors.Is(err, images.ErrTimeout) {
			err = fmt.Errorf("%w: no answer within %s: %w", images.ErrTimeout, timeout, err)
		}
		return img, false, fmt.Errorf("refresh image %s from %s: %w", img.Fingerprint, src.Ref(), err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	if !newer {
		cur, err := s.UpdateSource(img.Fingerprint, func(src *images.Source) { src.Checked = now })
		if err != nil {
			return img, false, err
		}
		return cur, false, nil
	}
	res, err := PullImage(ctx, s, root, src.Ref(), PullOptions{Aliases: img.Aliases, MoveAliases: true, Progress: o.Progress})
	if err != nil {
		return img, false, fmt.Errorf("refresh image %s: %w", img.Fingerprint, err)
	}
	cur, err := s.UpdateSource(res.Image.Fingerprint, func(ns *images.Source) { ns.AutoUpdate, ns.Checked = src.AutoUpdate, now })
	if err != nil {
		return img, false, err
	}
	return cur, cur.Fingerprint != img.Fingerprint, nil
}

// checkImage reports whether img's remote has a newer version of it.
func checkImage(ctx context.Context, root string, img *images.Image) (bool, error) {
	ref := img.Source.Ref()
	if strings.HasPrefix(ref, oci.LayoutPrefix) {
		r, err := oci.ParseReference(ref, false)
		if err != nil {
			return false, err
		}
		newer, _, err := oci.Check(ctx, img, r, oci.Options{})
		return newer, err
	}
	r, _, err := imageRemote(root, ref)
	if err != nil {
		return false, err
	}
	return pull.Check(ctx, r, img, pull.Options{})
}
