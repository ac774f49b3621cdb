package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/images/internal/httpx"
)

// maxConfigSize bounds an image config, which is read into memory.
const maxConfigSize = 16 << 20

// root is what a reference resolves to: an index or an image, and its digest.
type root struct {
	index  v1.ImageIndex
	image  v1.Image
	digest v1.Hash
}

// pull is Pull and PullRemote; asked is the reference as the user wrote it.
func pull(ctx context.Context, s *images.Store, ref Reference, asked string, o Options) (*Result, error) {
	osName, arch, variant, err := o.platform()
	if err != nil {
		return nil, err
	}
	r, err := open(ctx, ref, o)
	if err != nil {
		return nil, err
	}
	img, digest, err := pick(r, osName, arch, variant)
	if err != nil {
		return nil, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", digest, fetchErr(err))
	}
	if got := "sha256:" + sha256Hex(raw); got != digest.String() {
		return nil, &images.VerifyError{Item: "manifest " + digest.String(), What: "digest", Want: digest.String(), Got: got}
	}
	src := &images.Source{Remote: o.Remote, URL: ref.String(), Protocol: images.ProtocolOCI, Alias: asked,
		Digest: digest.String(), Pulled: time.Now().UTC().Truncate(time.Second)}
	if src.Remote == "" {
		src.Remote = "oci-layout"
		if ref.Layout == "" {
			src.Remote = ref.Registry.Context().RegistryStr()
		}
	}
	opts := images.ImportOptions{Aliases: o.Aliases, MoveAliases: o.MoveAliases, Source: src}
	if err := s.CheckAliasesFree(o.Aliases, o.MoveAliases, func(img *images.Image) bool { return img.Properties[PropDigest] == digest.String() }); err != nil {
		return nil, err
	}
	if have, err := pulled(s, digest.String()); err != nil {
		return nil, err
	} else if have != nil {
		stored, err := s.Record(have.Fingerprint, opts)
		if err != nil {
			return nil, err
		}
		d, err := DefaultsOf(stored)
		return &Result{Image: stored, Digest: digest.String(), Defaults: d, Cached: true}, err
	}
	m, err := v1.ParseManifest(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w: %v", digest, images.ErrBadResponse, err)
	}
	cfg, err := config(img, m, osName, arch, variant)
	if err != nil {
		return nil, err
	}
	tmp, release, err := s.TempDir(".tmp-oci-")
	if err != nil {
		return nil, err
	}
	defer release()
	defer os.RemoveAll(tmp)
	rootfs := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return nil, err
	}
	if err := unpack(ctx, img, m, cfg, rootfs, o); err != nil {
		return nil, err
	}
	meta := metadata(ref, digest.String(), arch, cfg)
	stored, err := s.ImportRootfs(ctx, rootfs, meta, templates, opts)
	if err != nil {
		return nil, err
	}
	d, err := DefaultsOf(stored)
	return &Result{Image: stored, Digest: digest.String(), Defaults: d}, err
}

// pulled is the image an earlier pull of the manifest digest stored, or
// nil. The index's source record decides, not the image's own oci.digest
// property: an imported image can't pass itself off as a pull.
func pulled(s *images.Store, digest string) (*images.Image, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		if img.Source != nil && img.Source.Protocol == images.ProtocolOCI && img.Source.Digest == digest {
			return img, nil
		}
	}
	return nil, nil
}

// open resolves ref to its index or image.
func open(ctx context.Context, ref Reference, o Options) (*root, error) {
	if ref.Layout != "" {
		return openLayout(ref)
	}
	rt := &plainHTTPGuard{base: httpx.NewTransport(httpx.Options{Remote: o.Remote, IdleTimeout: o.IdleTimeout, RootCAs: o.RootCAs}), insecure: o.Insecure}
	desc, err := remote.Get(ref.Registry, remote.WithContext(ctx), remote.WithTransport(rt), remote.WithAuth(authn.Anonymous),
		remote.WithUserAgent("stint"), remote.WithRetryBackoff(remote.Backoff{Steps: 1}))
	if err != nil {
		return nil, fetchErr(err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fetchErr(err)
		}
		return &root{index: idx, digest: desc.Digest}, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fetchErr(err)
	}
	return &root{image: img, digest: desc.Digest}, nil
}

// openLayout finds the layout's manifest named ref.Tag (or its only one).
func openLayout(ref Reference) (*root, error) {
	idx, err := layout.ImageIndexFromPath(ref.Layout)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", ref.Layout, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w: %v", ref.Layout, images.ErrBadResponse, err)
	}
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		if ref.Tag == "" || d.Annotations["org.opencontainers.image.ref.name"] == ref.Tag {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		what := fmt.Sprintf("no manifest named %q", ref.Tag)
		if len(found) > 1 {
			what = "several manifests: name one with :TAG"
		}
		return nil, fmt.Errorf("oci layout %s: %w: %s", ref.Layout, images.ErrNotFound, what)
	}
	d := found[0]
	if d.MediaType.IsIndex() {
		sub, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("oci layout %s: index %s: %w", ref.Layout, d.Digest, err)
		}
		raw, err := sub.RawManifest()
		if err != nil {
			return nil, fmt.Errorf("oci layout %s: index %s: %w", ref.Layout, d.Digest, err)
		}
		if got := "sha256:" + sha256Hex(raw); got != d.Digest.String() {
			return nil, &images.VerifyError{Item: "index " + d.Digest.String(), What: "digest", Want: d.Digest.String(), Got: got}
		}
		return &root{index: sub, digest: d.Digest}, nil
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: image %s: %w", ref.Layout, d.Digest, err)
	}
	return &root{image: img, digest: d.Digest}, nil
}

// pick returns the image of r for the platform, and its manifest digest.
func pick(r *root, osName, arch, variant string) (v1.Image, v1.Hash, error) {
	if r.index == nil {
		return r.image, r.digest, nil // its config's platform is checked by config
	}
	im, err := r.index.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("index %s: %w", r.digest, fetchErr(err))
	}
	var have []string
	for _, d := range im.Manifests {
		p := d.Platform
		if p == nil || d.MediaType.IsIndex() {
			continue
		}
		if p.OS == osName && p.Architecture == arch && (variant == "" || p.Variant == variant) {
			img, err := r.index.Image(d.Digest)
			if err != nil {
				return nil, v1.Hash{}, fmt.Errorf("manifest %s: %w", d.Digest, fetchErr(err))
			}
			return img, d.Digest, nil
		}
		have = append(have, p.String())
	}
	return nil, v1.Hash{}, fmt.Errorf("index %s: %w: no %s manifest (has %s)", r.digest, images.ErrPlatform,
		path.Join(osName, arch, variant), strings.Join(have, ", "))
}

// config fetches and verifies the image config and checks its platform.
func config(img v1.Image, m *v1.Manifest, osName, arch, variant string) (*v1.ConfigFile, error) {
	item := "config " + m.Config.Digest.String()
	if m.Config.Size > maxConfigSize {
		return nil, fmt.Errorf("%s: %w: %d bytes, more than %d", item, images.ErrBadResponse, m.Config.Size, maxConfigSize)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", item, fetchErr(err))
	}
	if int64(len(raw)) != m.Config.Size {
		return nil, &images.VerifyError{Item: item, What: "size", Want: fmt.Sprint(m.Config.Size), Got: fmt.Sprint(len(raw))}
	}
	if got := "sha256:" + sha256Hex(raw); got != m.Config.Digest.String() {
		return nil, &images.VerifyError{Item: item, What: "digest", Want: m.Config.Digest.String(), Got: got}
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", item, images.ErrBadResponse, err)
	}
	if cfg.OS != osName || cfg.Architecture != arch || (variant != "" && cfg.Variant != variant) {
		return nil, fmt.Errorf("%s: %w: the image is for %s, not %s", item, images.ErrPlatform,
			path.Join(cfg.OS, cfg.Architecture, cfg.Variant), path.Join(osName, arch, variant))
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%s: %w: %d diff_ids for %d layers", item, images.ErrBadResponse, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	return cfg, nil
}

// metadata is the LXD metadata.yaml of the OCI image: its properties carry
// the digest, the reference and the config's defaults.
func metadata(ref Reference, digest, arch string, cfg *v1.ConfigFile) *images.Metadata {
	created := cfg.Created.Unix()
	if cfg.Created.IsZero() || created <= 0 {
		created = 1 // metadata.yaml needs a date; keep the fingerprint a function of the digest
	}
	var name, tag string
	if ref.Layout == "" {
		name = path.Base(ref.Registry.Context().RepositoryStr())
		tag = ref.Registry.Identifier()
	} else {
		name, tag = path.Base(ref.Layout), ref.Tag
	}
	props := map[string]string{
		"os":           name,
		"release":      tag,
		"description":  fmt.Sprintf("OCI image %s (%s)", ref, digest[:19]),
		"architecture": images.Arch(arch),
		PropDigest:     digest,
		PropReference:  ref.String(),
		PropWorkingDir: cfg.Config.WorkingDir,
		PropUser:       cfg.Config.User,
	}
	for key, list := range map[string][]string{PropEnv: cfg.Config.Env, PropEntrypoint: cfg.Config.Entrypoint, PropCmd: cfg.Config.Cmd} {
		if len(list) > 0 {
			data, _ := json.Marshal(list)
			props[key] = string(data)
		}
	}
	for k, v := range props {
		if v == "" {
			delete(props, k)
		}
	}
	return &images.Metadata{
		Architecture: images.Arch(arch),
		CreationDate: created,
		Properties:   props,
		Templates: map[string]images.Template{
			"/etc/hostname": {When: []string{"create", "copy"}, Template: "hostname.tpl"},
			"/etc/hosts":    {When: []string{"create", "copy"}, CreateOnly: true, Template: "hosts.tpl"},
		},
	}
}

// templates give an OCI image, which has neither, a hostname and hosts file.
var templates = map[string][]byte{
	"hostname.tpl": []byte("{{ container.name }}\n"),
	"hosts.tpl":    []byte("127.0.0.1\tlocalhost\n127.0.1.1\t{{ container.name }}\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
}

// fetchErr types go-containerregistry's errors: a registry's 404 is
// images.ErrNotFound, other statuses images.ErrBadResponse.
func fetchErr(err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%w: %v", images.ErrNotFound, err)
		}
		return fmt.Errorf("%w: %v", images.ErrBadResponse, err)
	}
	return err
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// plainHTTPGuard refuses plain http to a host that is not loopback, unless
// insecure: go-containerregistry falls back to http for private addresses.
type plainHTTPGuard struct {
	base     http.RoundTripper
	insecure bool
}

func (g *plainHTTPGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.insecure && !images.IsLoopback(req.URL.Hostname()) {
		return nil, &images.RefusedURLError{URL: req.URL.Redacted(), Reason: "plain http to a registry that is not on loopback (mark the remote insecure)"}
	}
	return g.base.RoundTrip(req)
}
