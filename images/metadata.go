package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MaxMetadataSize caps metadata.yaml: it is parsed in memory.
const MaxMetadataSize = 1 << 20

// Metadata is LXD's metadata.yaml.
type Metadata struct {
	Architecture string              `yaml:"architecture"`
	CreationDate int64               `yaml:"creation_date"`
	ExpiryDate   int64               `yaml:"expiry_date,omitempty"`
	Properties   map[string]string   `yaml:"properties,omitempty"`
	Templates    map[string]Template `yaml:"templates,omitempty"`
}

// ParseMetadata parses and checks metadata.yaml: architecture and
// creation_date are required.
func ParseMetadata(data []byte) (*Metadata, error) {
	if len(data) > MaxMetadataSize {
		return nil, fmt.Errorf("%w: metadata.yaml is larger than %d bytes", ErrInvalidImage, MaxMetadataSize)
	}
	var m Metadata
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: metadata.yaml: %v", ErrInvalidImage, err)
	}
	var missing []string
	if m.Architecture == "" {
		missing = append(missing, "architecture")
	}
	if m.CreationDate == 0 {
		missing = append(missing, "creation_date")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: metadata.yaml: missing %s", ErrInvalidImage, strings.Join(missing, " and "))
	}
	for p, t := range m.Templates {
		if !path.IsAbs(p) {
			return nil, fmt.Errorf("%w: metadata.yaml: template path %q is not absolute", ErrInvalidImage, p)
		}
		if t.Template == "" || strings.Contains(t.Template, "/") || t.Template == ".." {
			return nil, fmt.Errorf("%w: metadata.yaml: template %q for %s is not a file name", ErrInvalidImage, t.Template, p)
		}
	}
	return &m, nil
}

// Marshal renders m as metadata.yaml.
func (m *Metadata) Marshal() ([]byte, error) { return yaml.Marshal(m) }

// cleanName normalises a tar entry name ("./rootfs/bin" → "rootfs/bin") and
// rejects absolute names and any ".." component.
func cleanName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", &UnsafeEntryError{Entry: name, Reason: "absolute path"}
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", &UnsafeEntryError{Entry: name, Reason: `".." component`}
		}
	}
	n := path.Clean(name)
	if n == "." {
		return "", nil
	}
	return n, nil
}

// metaContents reads metadata.yaml and templates/* from an image's metadata
// tarball (the unified tarball, or the split metadata tarball).
type metaContents struct {
	meta      *Metadata
	templates map[string][]byte // templates/<name> → contents
	hasRootfs bool              // a rootfs/ entry was seen (unified)
}

// readMetaTar scans the (compressed) tarball at file for metadata.yaml, and
// templates too when withTemplates.
func readMetaTar(file string, withTemplates bool) (*metaContents, string, error) {
	return scanMetaTar(file, withTemplates, nil)
}

// scanMetaTar is readMetaTar that also runs every entry through rules,
// when not nil: import checks a unified tarball's rootfs in the same pass.
func scanMetaTar(file string, withTemplates bool, rules *tarRules) (*metaContents, string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	r, format, err := decompress(f)
	if err != nil {
		return nil, "", err
	}
	defer r.Close()
	if format == "squashfs" {
		return nil, format, fmt.Errorf("%w: a squashfs file is not a metadata tarball", ErrInvalidImage)
	}
	mc := &metaContents{templates: map[string][]byte{}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, format, fmt.Errorf("%w: tar: %v", ErrInvalidImage, err)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return nil, format, err
		}
		if rules != nil {
			if _, _, _, err := rules.next(hdr); err != nil {
				return nil, format, err
			}
		}
		switch {
		case name == "metadata.yaml":
			data, err := io.ReadAll(io.LimitReader(tr, MaxMetadataSize+1))
			if err != nil {
				return nil, format, fmt.Errorf("%w: metadata.yaml: %v", ErrInvalidImage, err)
			}
			if mc.meta, err = ParseMetadata(data); err != nil {
				return nil, format, err
			}
		case name == "rootfs" || strings.HasPrefix(name, "rootfs/"):
			mc.hasRootfs = true
		case withTemplates && strings.HasPrefix(name, "templates/") && hdr.Typeflag == tar.TypeReg:
			data, err := io.ReadAll(io.LimitReader(tr, MaxMetadataSize+1))
			if err != nil {
				return nil, format, fmt.Errorf("%w: %s: %v", ErrInvalidImage, name, err)
			}
			if len(data) > MaxMetadataSize {
				return nil, format, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalidImage, name, MaxMetadataSize)
			}
			mc.templates[strings.TrimPrefix(name, "templates/")] = data
		}
	}
	if mc.meta == nil {
		return nil, format, fmt.Errorf("%w: no metadata.yaml", ErrInvalidImage)
	}
	return mc, format, nil
}

func unixTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}
