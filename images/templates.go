package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/flosch/pongo2/v6"
	"golang.org/x/sys/unix"
)

// Template triggers, as LXD names them.
const (
	TriggerCreate = "create"
	TriggerCopy   = "copy"
	TriggerStart  = "start"
)

// TemplateContext is what a template sees, as in LXD: container.name,
// container.architecture, container.privileged, container.ephemeral, config,
// properties (the template's own) and trigger.
type TemplateContext struct {
	Name         string
	Architecture string // default: the image's
	Privileged   bool
	Ephemeral    bool
	Config       map[string]string // the container's config (config_get reads it)
	// UID and GID own files the templates create (the container's root, in
	// host ids when the rootfs is id-shifted). Existing files keep their owner.
	UID, GID int
}

// RenderTemplates renders img's metadata.yaml templates whose "when" lists
// trigger into rootfs, with pongo2 and LXD's context. A create_only template
// leaves an existing file alone. Files are written beneath rootfs only,
// through no symlink.
func RenderTemplates(img *Image, rootfs string, trigger string, tc TemplateContext) error {
	if len(img.Templates) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, t := range img.Templates {
		if contains(t.When, trigger) {
			want[t.Template] = true
		}
	}
	if len(want) == 0 {
		return nil
	}
	srcs, err := readTemplates(img.Path(), want)
	if err != nil {
		return fmt.Errorf("templates of image %s: %w", img.Fingerprint, err)
	}
	mc := &metaContents{templates: srcs}
	set, err := sandboxedSet()
	if err != nil {
		return fmt.Errorf("templates of image %s: %w", img.Fingerprint, err)
	}
	arch := tc.Architecture
	if arch == "" {
		arch = img.Architecture
	}
	container := map[string]string{
		"name":         tc.Name,
		"type":         "container",
		"architecture": arch,
		"privileged":   fmt.Sprint(tc.Privileged),
		"ephemeral":    fmt.Sprint(tc.Ephemeral),
	}
	config := tc.Config
	if config == nil {
		config = map[string]string{}
	}
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("templates: open rootfs %s: %w", rootfs, err)
	}
	defer unix.Close(root)
	x := &extractor{root: root}
	paths := make([]string, 0, len(img.Templates))
	for p := range img.Templates {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		t := img.Templates[p]
		if !contains(t.When, trigger) {
			continue
		}
		src, ok := mc.templates[t.Template]
		if !ok {
			return fmt.Errorf("template %s for %s: not in image %s", t.Template, p, img.Fingerprint)
		}
		tpl, err := set.FromBytes(src)
		if err != nil {
			return fmt.Errorf("template %s for %s: %w", t.Template, p, err)
		}
		props := t.Properties
		if props == nil {
			props = map[string]string{}
		}
		out, err := tpl.Execute(pongo2.Context{
			"trigger":    trigger,
			"path":       p,
			"container":  container,
			"instance":   container,
			"config":     config,
			"devices":    map[string]map[string]string{},
			"properties": props,
			"config_get": func(key, def string) *pongo2.Value {
				if v, ok := config[key]; ok {
					return pongo2.AsValue(v)
				}
				return pongo2.AsValue(def)
			},
		})
		if err != nil {
			return fmt.Errorf("template %s for %s: %w", t.Template, p, err)
		}
		if err := writeBeneath(x, strings.TrimPrefix(p, "/"), []byte(out), t.CreateOnly, tc.UID, tc.GID); err != nil {
			return fmt.Errorf("template %s: write %s in %s: %w", t.Template, p, rootfs, err)
		}
	}
	return nil
}

// bannedTags are pongo2's tags that load another file: a hostile image's
// template would read the host's (say {% include "/etc/shadow" %}) as root.
// LXD and Incus ban the same. ("from" is not a tag in pongo2 v6: unknown,
// it fails the parse anyway.)
var bannedTags = []string{"include", "ssi", "extends", "import"}

// sandboxedSet is a pongo2 set that reads no file: the tags that would are
// banned, and its loader refuses every name, should another way to load
// appear. A new set per render: FromBytes marks its set, so a shared one
// would be written by concurrent jobs.
func sandboxedSet() (*pongo2.TemplateSet, error) {
	set := pongo2.NewSet("image-templates", noLoader{})
	for _, tag := range bannedTags {
		if err := set.BanTag(tag); err != nil {
			return nil, fmt.Errorf("ban template tag %s: %w", tag, err)
		}
	}
	return set, nil
}

// errNoLoad is what a template gets when it tries to load a file.
var errNoLoad = errors.New("image templates cannot load files")

// noLoader is a pongo2.TemplateLoader with nothing to load.
type noLoader struct{}

func (noLoader) Abs(base, name string) string { return name }

func (noLoader) Get(name string) (io.Reader, error) {
	return nil, fmt.Errorf("%s: %w", name, errNoLoad)
}

// writeBeneath writes data to name beneath x's root.
func writeBeneath(x *extractor, name string, data []byte, createOnly bool, uid, gid int) error {
	name, err := cleanName(name)
	if err != nil || name == "" {
		return &UnsafeEntryError{Entry: name, Reason: "bad template path"}
	}
	parent, base, err := x.parent(name, true)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	created := err == nil
	if errors.Is(err, unix.EEXIST) {
		if createOnly {
			return nil
		}
		fd, err = unix.Openat(parent, base, unix.O_WRONLY|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if created {
		if err := unix.Fchown(fd, uid, gid); err != nil && !errors.Is(err, unix.EPERM) {
			return err
		}
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Close()
}

// readTemplates reads the wanted template sources (templates/<name>) from an
// image's metadata tarball and stops once it has them all: every job's
// clone renders them, and a unified tarball's rootfs, which usually follows
// its templates, need not be decompressed each time.
func readTemplates(file string, want map[string]bool) (map[string][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, format, err := decompress(f)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if format == "squashfs" {
		return nil, fmt.Errorf("%w: a squashfs file is not a metadata tarball", ErrInvalidImage)
	}
	srcs := map[string][]byte{}
	tr := tar.NewReader(r)
	for len(srcs) < len(want) {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: tar: %v", ErrInvalidImage, err)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return nil, err
		}
		t, ok := strings.CutPrefix(name, "templates/")
		if !ok || !want[t] || hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, MaxMetadataSize+1))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidImage, name, err)
		}
		if len(data) > MaxMetadataSize {
			return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalidImage, name, MaxMetadataSize)
		}
		srcs[t] = data
	}
	return srcs, nil
}
