// Package pull is the one door to images on remotes: it takes an
// images.Remote and dispatches on its protocol to package simplestreams or
// package oci, so the CLI (`stint image pull REMOTE:ALIAS`) and the runner
// (`image = "REMOTE:ALIAS"` in a spec) don't. `oci-layout:/path:tag`
// references go to package oci directly (oci.Pull).
package pull

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/oci"
	"github.com/stintdev/stint/images/simplestreams"
)

// Options tune Pull and Check.
type Options struct {
	Aliases     []string      // local aliases for the pulled image
	MoveAliases bool          // take them from the image that has them (a refresh)
	Arch        string        // LXD's or Go's name (x86_64 or amd64); "" for the host's
	IdleTimeout time.Duration // a remote silent this long fails (default 30s)
	RootCAs     *x509.CertPool
	SkipDevices bool                                 // OCI layers: skip device nodes
	Progress    func(item string, done, total int64) // per downloaded file or blob
}

// Result is a pulled image.
type Result struct {
	Image    *images.Image
	Defaults oci.Defaults // an OCI image's config defaults (zero for simplestreams)
}

// Pull pulls alias (a simplestreams alias, or an OCI repo[:tag|@digest]
// under the remote's path) from r into s. See simplestreams.Client.Pull
// and oci.PullRemote for what is checked; errors are typed as documented
// in package images.
func Pull(ctx context.Context, s *images.Store, r images.Remote, alias string, o Options) (*Result, error) {
	switch r.Protocol {
	case images.ProtocolSimplestreams:
		c, err := simplestreams.New(r, simplestreams.Options{IdleTimeout: o.IdleTimeout, RootCAs: o.RootCAs})
		if err != nil {
			return nil, err
		}
		img, err := c.Pull(ctx, s, alias, simplestreams.PullOptions{Arch: o.Arch, Aliases: o.Aliases, MoveAliases: o.MoveAliases, Progress: o.Progress})
		if err != nil {
			return nil, err
		}
		return &Result{Image: img}, nil
	case images.ProtocolOCI:
		res, err := oci.PullRemote(ctx, s, r, alias, ociOptions(o))
		if err != nil {
			return nil, err
		}
		return &Result{Image: res.Image, Defaults: res.Defaults}, nil
	}
	return nil, r.Validate()
}

// Check reports whether r has a newer version of img (pulled from r) than
// the stored one, downloading no image: auto-update's question. The
// caller pulls img.Source.Alias again with MoveAliases when it does, and
// decides what becomes of the old image.
func Check(ctx context.Context, r images.Remote, img *images.Image, o Options) (bool, error) {
	if img.Source == nil || img.Source.Remote != r.Name {
		return false, fmt.Errorf("check image %s: %w: not pulled from remote %s", img.Fingerprint, images.ErrInvalidRemote, r.Name)
	}
	switch r.Protocol {
	case images.ProtocolSimplestreams:
		c, err := simplestreams.New(r, simplestreams.Options{IdleTimeout: o.IdleTimeout, RootCAs: o.RootCAs})
		if err != nil {
			return false, err
		}
		up, err := c.Check(ctx, img)
		if err != nil {
			return false, err
		}
		return up.Newer, nil
	case images.ProtocolOCI:
		ref, err := oci.RemoteReference(r, img.Source.Alias)
		if err != nil {
			return false, err
		}
		newer, _, err := oci.Check(ctx, img, ref, ociOptions(o))
		return newer, err
	}
	return false, r.Validate()
}

func ociOptions(o Options) oci.Options {
	oo := oci.Options{Aliases: o.Aliases, MoveAliases: o.MoveAliases, IdleTimeout: o.IdleTimeout, RootCAs: o.RootCAs,
		SkipDevices: o.SkipDevices, Progress: o.Progress}
	if o.Arch != "" {
		oo.Platform = "linux/" + goArch(o.Arch)
	}
	return oo
}

// goArch maps LXD's architecture names to Go's/OCI's (x86_64 → amd64).
func goArch(a string) string {
	switch a {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "armv7l":
		return "arm"
	case "i686":
		return "386"
	}
	return a
}

// SplitRef splits "REMOTE:ALIAS" at its first ':' when what comes before
// is a possible remote name (non-empty, no '/' or white space) and
// something follows; ok is false otherwise, e.g. for a local alias or
// fingerprint. "oci-layout:..." is not split: it is a reference of its
// own (oci.Pull). Whether REMOTE is a configured remote, and so whether
// a local alias containing ':' wins, is the caller's decision.
func SplitRef(ref string) (remote, alias string, ok bool) {
	if strings.HasPrefix(ref, oci.LayoutPrefix) {
		return "", "", false
	}
	remote, alias, ok = strings.Cut(ref, ":")
	if !ok || remote == "" || alias == "" || strings.ContainsAny(remote, "/ \t\n") {
		return "", "", false
	}
	return remote, alias, true
}
