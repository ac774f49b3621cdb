package images

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrNotFound: no image matches the reference.
	ErrNotFound = errors.New("image not found")
	// ErrAliasExists: the alias already names another image.
	ErrAliasExists = errors.New("alias already in use")
	// ErrFingerprintMismatch: the imported files do not hash to the expected fingerprint.
	ErrFingerprintMismatch = errors.New("fingerprint mismatch")
	// ErrInvalidImage: the files are not an LXD image (bad metadata.yaml, unknown format).
	ErrInvalidImage = errors.New("invalid image")
	// ErrUnsafeEntry: a tarball entry would write outside its target.
	ErrUnsafeEntry = errors.New("unsafe tarball entry")
)

// UnsafeEntryError is a tarball entry refused by safe extraction; it
// matches ErrUnsafeEntry with errors.Is.
type UnsafeEntryError struct {
	Entry  string // the entry's name as written in the tarball
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("unsafe tarball entry %q: %s", e.Entry, e.Reason)
}

// Is makes errors.Is(err, ErrUnsafeEntry) true.
func (e *UnsafeEntryError) Is(target error) bool { return target == ErrUnsafeEntry }

// AmbiguousError is returned by Resolve when a fingerprint prefix, or a
// spec image's bare name, matches more than one image.
type AmbiguousError struct {
	Ref     string
	Matches []string // full fingerprints, or the SET/NAME aliases of a bare name; sorted
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("image %q is ambiguous: matches %s", e.Ref, strings.Join(e.Matches, ", "))
}

// BuildProperty is the image property where builders record the hash of
// their inputs: a build with the same inputs returns the image carrying it.
const BuildProperty = "stint.build"

// BaseProperty is the image property where a recipe's result records its
// base image's fingerprint: Prune keeps a base while a result stays.
const BaseProperty = "stint.base"

// Image is one image of the store. JSON names follow LXD's image API.
type Image struct {
	Fingerprint  string            `json:"fingerprint"`
	Aliases      []string          `json:"aliases"`
	Architecture string            `json:"architecture"`
	Created      time.Time         `json:"created_at"`
	Expires      time.Time         `json:"expires_at"`
	Uploaded     time.Time         `json:"uploaded_at"`
	LastUsed     time.Time         `json:"last_used_at"`
	Properties   map[string]string `json:"properties"`
	Split        bool              `json:"split"`
	Size         int64             `json:"size"` // bytes of the stored file(s)
	// Compression of the unified tarball or metadata tarball: gzip, xz, zstd, bzip2, none.
	Compression string `json:"compression"`
	// RootfsFormat of a split image: "squashfs" or a tarball compression (gzip, xz, ...).
	RootfsFormat string `json:"rootfs_format,omitempty"`
	// Templates are metadata.yaml's templates, keyed by the path in the container.
	Templates map[string]Template `json:"templates,omitempty"`
	// Source is where a pulled image came from; nil for built and imported images.
	Source *Source `json:"source,omitempty"`

	dir string // the store directory, for Unpack/RenderTemplates/Export
}

// Template is one entry of metadata.yaml's templates.
type Template struct {
	When       []string          `json:"when" yaml:"when"`
	CreateOnly bool              `json:"create_only" yaml:"create_only"`
	Template   string            `json:"template" yaml:"template"`
	Properties map[string]string `json:"properties,omitempty" yaml:"properties"`
}

// Description is the description property, as `lxc image list` shows it.
func (img *Image) Description() string { return img.Properties["description"] }

// Path is the stored unified tarball, or the metadata tarball of a split image.
func (img *Image) Path() string { return img.dir + "/" + img.Fingerprint }

// RootfsPath is the stored rootfs of a split image ("" for unified).
func (img *Image) RootfsPath() string {
	if !img.Split {
		return ""
	}
	return img.Path() + ".rootfs"
}

// ExportNames are the file names `lxc image export` would give the image's
// files: <fp>.tar.<ext> for unified; meta-<fp>.tar.<ext> and <fp>.<ext> for split.
func (img *Image) ExportNames() []string {
	if !img.Split {
		return []string{img.Fingerprint + tarExt(img.Compression)}
	}
	rootfs := img.Fingerprint + tarExt(img.RootfsFormat)
	if img.RootfsFormat == "squashfs" {
		rootfs = img.Fingerprint + ".squashfs"
	}
	return []string{"meta-" + img.Fingerprint + tarExt(img.Compression), rootfs}
}

func tarExt(compression string) string {
	switch compression {
	case "gzip":
		return ".tar.gz"
	case "xz":
		return ".tar.xz"
	case "zstd":
		return ".tar.zst"
	case "bzip2":
		return ".tar.bz2"
	}
	return ".tar"
}

func (img *Image) clone() *Image {
	c := *img
	c.Aliases = append([]string(nil), img.Aliases...)
	c.Properties = make(map[string]string, len(img.Properties))
	for k, v := range img.Properties {
		c.Properties[k] = v
	}
	c.Source = img.Source.clone()
	return &c
}

func (img *Image) removeAlias(name string) {
	out := img.Aliases[:0]
	for _, a := range img.Aliases {
		if a != name {
			out = append(out, a)
		}
	}
	img.Aliases = out
}

func (img *Image) addAliases(names ...string) {
	for _, n := range names {
		if !contains(img.Aliases, n) {
			img.Aliases = append(img.Aliases, n)
		}
	}
	sort.Strings(img.Aliases)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Arch maps a Go GOARCH to LXD's architecture name (amd64 → x86_64).
func Arch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	case "arm":
		return "armv7l"
	}
	return goarch // ppc64le, s390x, riscv64 have the same names
}

// HostArch is the host's architecture in LXD's naming.
func HostArch() string { return Arch(runtime.GOARCH) }
