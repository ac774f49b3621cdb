// Package oci brings OCI (Docker) images into stint's image store: from a
// registry (`host:port/repo:tag`, `host/repo@sha256:...`) or a local OCI
// layout (`oci-layout:/path:tag`), it resolves the index to the manifest
// for the platform (linux/amd64 on amd64), verifies the manifest, config
// and every layer against their digests and sizes, unpacks the layers in
// order with images.LayerApplier (whiteouts, opaque directories, hard
// links, the safe extractor's rules; not go-containerregistry's
// mutate.Extract), and stores the result as a unified LXD image
// (metadata.yaml + rootfs/) whose properties carry the manifest digest and
// the config's defaults (Env, WorkingDir, User, Entrypoint, Cmd).
//
// A second pull of a manifest digest that is in the store downloads
// nothing. Errors are typed as in package images: images.ErrInvalidRemote
// for a malformed reference (usage), images.ErrVerify, ErrPlatform,
// ErrRefusedURL, ErrTimeout, ErrUnsafeEntry for the image or registry.
package oci

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stintdev/stint/images"
)

// Image properties an OCI image carries in the store (and metadata.yaml).
const (
	PropDigest     = "oci.digest"     // the manifest digest (sha256:...)
	PropReference  = "oci.reference"  // the reference pulled
	PropEnv        = "oci.env"        // JSON array of KEY=VALUE
	PropWorkingDir = "oci.workingdir" // the config's WorkingDir
	PropUser       = "oci.user"       // the config's User
	PropEntrypoint = "oci.entrypoint" // JSON array
	PropCmd        = "oci.cmd"        // JSON array
)

// LayoutPrefix starts a reference to a local OCI layout: oci-layout:/path[:tag].
const LayoutPrefix = "oci-layout:"

// Defaults are an image config's process defaults, which a job may override.
type Defaults struct {
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
}

// DefaultsOf reads the defaults an OCI image recorded in its properties
// (the zero Defaults for an image not pulled from OCI).
func DefaultsOf(img *images.Image) (Defaults, error) {
	d := Defaults{WorkingDir: img.Properties[PropWorkingDir], User: img.Properties[PropUser]}
	for key, dst := range map[string]*[]string{PropEnv: &d.Env, PropEntrypoint: &d.Entrypoint, PropCmd: &d.Cmd} {
		if v := img.Properties[key]; v != "" {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				return d, fmt.Errorf("image %s: property %s: %w", img.Fingerprint, key, err)
			}
		}
	}
	return d, nil
}

// Options tune Pull.
type Options struct {
	// Platform is os/arch[/variant] (default linux/GOARCH).
	Platform string
	// Aliases are local aliases for the image; MoveAliases takes them from
	// the image that has them (a refresh keeps the old image).
	Aliases     []string
	MoveAliases bool
	// Remote names the source in the image's record (default: the
	// registry host, or "oci-layout").
	Remote string
	// Insecure allows plain http to a registry that is not on loopback
	// (loopback registries may always use http). TLS is always verified.
	Insecure bool
	// RootCAs verify the registry's certificate (nil: the system's).
	RootCAs *x509.CertPool
	// IdleTimeout: a registry that sends nothing for this long fails the
	// pull with images.ErrTimeout (default 30s).
	IdleTimeout time.Duration
	// SkipDevices skips device nodes in layers (always skipped when not root).
	SkipDevices bool
	// Progress, when set, is called as each blob downloads.
	Progress func(item string, done, total int64)
}

func (o Options) platform() (os, arch, variant string, err error) {
	p := o.Platform
	if p == "" {
		p = "linux/" + runtime.GOARCH
	}
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return "", "", "", fmt.Errorf("platform %q: %w: want os/arch[/variant]", p, images.ErrInvalidRemote)
	}
	if len(parts) == 3 {
		variant = parts[2]
	}
	return parts[0], parts[1], variant, nil
}

// Result is a pulled image.
type Result struct {
	Image    *images.Image
	Digest   string   // the manifest digest
	Defaults Defaults // from the image config
	Cached   bool     // the digest was in the store already: nothing downloaded
}

// Reference is a parsed image reference.
type Reference struct {
	// Layout is the directory of a local OCI layout ("" for a registry).
	Layout string
	// Tag names an image of the layout (its org.opencontainers.image.ref.name).
	Tag string
	// Registry is the registry reference.
	Registry name.Reference
}

func (r Reference) String() string {
	if r.Layout != "" {
		if r.Tag == "" {
			return LayoutPrefix + r.Layout
		}
		return LayoutPrefix + r.Layout + ":" + r.Tag
	}
	return r.Registry.String()
}

// ParseReference parses `oci-layout:/path[:tag]` or a registry reference
// `host[:port]/repo[:tag|@digest]`. A registry on a loopback host may use
// plain http; others only with insecure. Errors wrap images.ErrInvalidRemote.
func ParseReference(ref string, insecure bool) (Reference, error) {
	if rest, ok := strings.CutPrefix(ref, LayoutPrefix); ok {
		dir, tag := rest, ""
		if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
			dir, tag = rest[:i], rest[i+1:]
		}
		if dir == "" {
			return Reference{}, fmt.Errorf("reference %q: %w: no layout directory", ref, images.ErrInvalidRemote)
		}
		return Reference{Layout: dir, Tag: tag}, nil
	}
	host, _, _ := strings.Cut(ref, "/")
	if !strings.Contains(ref, "/") || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		return Reference{}, fmt.Errorf("reference %q: %w: want host[:port]/repository[:tag] (no default registry)", ref, images.ErrInvalidRemote)
	}
	opts := []name.Option{name.StrictValidation}
	if insecure || images.IsLoopback(hostOnly(host)) {
		opts = append(opts, name.Insecure)
	}
	if !strings.Contains(ref[len(host):], ":") && !strings.Contains(ref, "@") {
		ref += ":latest"
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return Reference{}, fmt.Errorf("reference %q: %w: %v", ref, images.ErrInvalidRemote, err)
	}
	return Reference{Registry: r}, nil
}

func hostOnly(hostport string) string {
	if strings.HasPrefix(hostport, "[") {
		if i := strings.Index(hostport, "]"); i > 0 {
			return hostport[1:i]
		}
	}
	h, _, _ := strings.Cut(hostport, ":")
	return h
}

// RemoteReference is the reference of image (repo[:tag|@digest]) on the
// OCI remote r: its URL's host and path prefix joined with image
// (https://registry.example/library + alpine:3.20 →
// registry.example/library/alpine:3.20).
func RemoteReference(r images.Remote, image string) (Reference, error) {
	if err := r.Validate(); err != nil {
		return Reference{}, err
	}
	if r.Protocol != images.ProtocolOCI {
		return Reference{}, fmt.Errorf("remote %s: %w: protocol %s is not oci", r.Name, images.ErrInvalidRemote, r.Protocol)
	}
	if image == "" || strings.HasPrefix(image, "/") || strings.Contains(image, "..") {
		return Reference{}, fmt.Errorf("remote %s: image %q: %w", r.Name, image, images.ErrInvalidRemote)
	}
	u, _ := r.BaseURL()
	insecure := u.Scheme == "http"
	return ParseReference(u.Host+strings.TrimRight(u.Path, "/")+"/"+image, insecure)
}

// PullRemote pulls image from the OCI remote r (see RemoteReference, Pull).
func PullRemote(ctx context.Context, s *images.Store, r images.Remote, image string, o Options) (*Result, error) {
	ref, err := RemoteReference(r, image)
	if err != nil {
		return nil, err
	}
	o.Remote = r.Name
	o.Insecure = o.Insecure || r.Insecure
	res, err := pull(ctx, s, ref, image, o)
	if err != nil {
		return nil, fmt.Errorf("pull %s:%s: %w", r.Name, image, err)
	}
	return res, nil
}

// Pull pulls ref (see ParseReference) into s.
func Pull(ctx context.Context, s *images.Store, ref string, o Options) (*Result, error) {
	r, err := ParseReference(ref, o.Insecure)
	if err != nil {
		return nil, err
	}
	res, err := pull(ctx, s, r, ref, o)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	return res, nil
}

// Check is auto-update's question for an OCI image: does ref (the
// reference img was pulled from, by tag) now name another manifest for the
// platform than img's recorded digest? It reads the index or manifest
// only. The caller pulls ref again (with MoveAliases) when it does; the
// old image stays in the store.
func Check(ctx context.Context, img *images.Image, ref Reference, o Options) (newer bool, digest string, err error) {
	osName, arch, variant, err := o.platform()
	if err != nil {
		return false, "", err
	}
	have := img.Properties[PropDigest]
	if have == "" {
		return false, "", fmt.Errorf("check image %s: %w: not an OCI image", img.Fingerprint, images.ErrInvalidRemote)
	}
	r, err := open(ctx, ref, o)
	if err != nil {
		return false, "", fmt.Errorf("check image %s: %w", img.Fingerprint, err)
	}
	_, d, err := pick(r, osName, arch, variant)
	if err != nil {
		return false, "", fmt.Errorf("check image %s: %w", img.Fingerprint, err)
	}
	return d.String() != have, d.String(), nil
}
