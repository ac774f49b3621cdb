package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/runner"
	"github.com/stintdev/stint/spec"
)

// ImageCmd groups the image store commands.
type ImageCmd struct {
	Import  ImageImportCmd  `cmd:"" help:"Import an LXD image: a unified tarball, or a metadata tarball and a rootfs."`
	List    ImageListCmd    `cmd:"" aliases:"ls" help:"List images (FILTER: alias or fingerprint prefix, or key=value on properties)."`
	Info    ImageInfoCmd    `cmd:"" help:"Show an image's details."`
	Alias   ImageAliasCmd   `cmd:"" help:"Add or remove image aliases."`
	Delete  ImageDeleteCmd  `cmd:"" aliases:"rm" help:"Delete images."`
	Export  ImageExportCmd  `cmd:"" help:"Export an image as LXD would (byte-identical to its import)."`
	Build   ImageBuildCmd   `cmd:"" help:"Build images: the [image.*] of a spec file, or one builder from flags."`
	Prune   ImagePruneCmd   `cmd:"" help:"Delete images past their expiry date (and, with --unused-for, long unused)."`
	Pull    ImagePullCmd    `cmd:"" help:"Pull an image from a remote: REMOTE:ALIAS, or oci-layout:/path[:tag]."`
	Serve   ImageServeCmd   `cmd:"" help:"Serve the image store as a simplestreams remote (until SIGINT or SIGTERM)."`
	Refresh ImageRefreshCmd `cmd:"" help:"Pull newer versions of pulled images from their remotes (default: every auto-updating image)."`
}

// openImageStore opens --root for image commands: the image store, and
// through the Host the golden volumes that delete and prune destroy.
func openImageStore(g *Globals) (*runner.Host, *images.Store, error) {
	h, err := g.openHost(context.Background(), runner.Options{})
	if err != nil {
		return nil, nil, err
	}
	s, err := h.Images()
	if err != nil {
		h.Close()
		return nil, nil, withCode(ExitHost, err)
	}
	return h, s, nil
}

// imageErr maps image store errors to exit codes: bad input is usage, the
// rest is the host's.
func imageErr(err error) error {
	var amb *images.AmbiguousError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &amb), errors.Is(err, images.ErrNotFound), errors.Is(err, images.ErrAliasExists),
		errors.Is(err, images.ErrInvalidImage), errors.Is(err, images.ErrFingerprintMismatch),
		errors.Is(err, images.ErrUnsafeEntry), errors.Is(err, images.ErrRecipe), errors.Is(err, os.ErrNotExist),
		errors.Is(err, images.ErrInvalidAlias):
		return withCode(ExitUsage, err)
	}
	return withCode(ExitHost, err)
}

// ImageImportCmd imports an image.
type ImageImportCmd struct {
	File        string   `arg:"" help:"Unified tarball, or the metadata tarball of a split image." type:"existingfile"`
	Rootfs      string   `arg:"" optional:"" help:"The rootfs of a split image (tarball or squashfs)." type:"existingfile"`
	Alias       []string `help:"Alias for the image (repeatable)."`
	Fingerprint string   `help:"Expected fingerprint: the import fails unless it matches."`
}

// Run imports the image.
func (c *ImageImportCmd) Run(g *Globals) error {
	h, s, err := openImageStore(g)
	if err != nil {
		return err
	}
	defer h.Close()
	files := []string{c.File}
	if c.Rootfs != "" {
		files = append(files, c.Rootfs)
	}
	pr := newImageProgress(g, "import "+filepath.Base(c.File))
	img, err := s.Import(context.Background(), files, images.ImportOptions{Aliases: c.Alias, Fingerprint: c.Fingerprint, Progress: pr.Update})
	pr.Done()
	if err != nil {
		return imageErr(err)
	}
	if g.JSON {
		return writeJSON(g.Stdout, img)
	}
	_, err = fmt.Fprintf(g.Stdout, "Image imported with fingerprint: %s\n", img.Fingerprint)
	return err
}

// ImageListCmd lists images.
type ImageListCmd struct {
	Filter []string `arg:"" optional:"" help:"Alias or fingerprint prefix, or key=value on properties; all must match."`
}

func imageMatches(img *images.Image, filters []string) bool {
	for _, f := range filters {
		if k, v, ok := strings.Cut(f, "="); ok {
			if img.Properties[k] != v && !(k == "architecture" && img.Architecture == v) {
				return false
			}
			continue
		}
		ok := strings.HasPrefix(img.Fingerprint, f)
		for _, a := range img.Aliases {
			ok = ok || a == f || strings.HasPrefix(a, f)
		}
		if !ok {
			return false
		}
	}
	return true
}

// Run prints the table (or JSON).
func (c *ImageListCmd) Run(g *Globals) error {
	h, s, err := openImageStore(g)
	if err != nil {
		return err
	}
	defer h.Close()
	all, err := s.List()
	if err != nil {
		return imageErr(err)
	}
	imgs := []*images.Image{}
	for _, img := range all {
		if imageMatches(img, c.Filter) {
			imgs = append(imgs, img)
		}
	}
	sort.SliceStable(imgs, func(i, j int) bool { return imageSortKey(imgs[i]) < imageSortKey(imgs[j]) })
	if g.JSON {
		return writeJSON(g.Stdout, imgs)
	}
	w := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ALIAS\tFINGERPRINT\tDESCRIPTION\tARCH\tSIZE\tUPLOAD DATE\tSOURCE")
	for _, img := range imgs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", strings.Join(img.Aliases, ","), img.Fingerprint[:12],
			img.Description(), img.Architecture, humanize.IBytes(uint64(img.Size)), img.Uploaded.Format("Jan 2, 2006 at 3:04pm (MST)"),
			imageSource(img))
	}
	return w.Flush()
}

// imageSource is where an image came from: REMOTE:ALIAS@VERSION for a
// pulled one, "local" for one built or imported here.
func imageSource(img *images.Image) string {
	if img.Source == nil {
		return "local"
	}
	return img.Source.String()
}

func imageSortKey(img *images.Image) string {
	if len(img.Aliases) > 0 {
		return "0" + img.Aliases[0]
	}
	return "1" + img.Fingerprint
}

// ImageInfoCmd shows one image.
type ImageInfoCmd struct {
	Image string `arg:"" help:"Alias, fingerprint or unique fingerprint prefix."`
}

// Run prints the image.
func (c *ImageInfoCmd) Run(g *Globals) error {
	h, s, err := openImageStore(g)
	if err != nil {
		return err
	}
	defer h.Close()
	img, err := s.Resolve(c.Image)
	if err != nil {
		return imageErr(err)
	}
	if g.JSON {
		return writeJSON(g.Stdout, img)
	}
	date := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006/01/02 15:04 MST")
	}
	kind := "unified"
	if img.Split {
		kind = "split (rootfs: " + img.RootfsFormat + ")"
	}
	w := g.Stdout
	fmt.Fprintf(w, "Fingerprint: %s\nSize: %s\nArchitecture: %s\nType: container\nFormat: %s, %s\n", img.Fingerprint,
		humanize.IBytes(uint64(img.Size)), img.Architecture, kind, img.Compression)
	fmt.Fprintf(w, "Timestamps:\n    Created: %s\n    Uploaded: %s\n    Expires: %s\n    Last used: %s\n",
		date(img.Created), date(img.Uploaded), date(img.Expires), date(img.LastUsed))
	fmt.Fprintf(w, "Source: %s\n", imageSource(img))
	fmt.Fprintln(w, "Properties:")
	keys := make([]string, 0, len(img.Properties))
	for k := range img.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "    %s: %s\n", k, img.Properties[k])
	}
	fmt.Fprintln(w, "Aliases:")
	for _, a := range img.Aliases {
		fmt.Fprintf(w, "    - %s\n", a)
	}
	if len(img.Templates) > 0 {
		fmt.Fprintln(w, "Templates:")
		paths := make([]string, 0, len(img.Templates))
		for p := range img.Templates {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			fmt.Fprintf(w, "    %s: %s (%s)\n", p, img.Templates[p].Template, strings.Join(img.Templates[p].When, ", "))
		}
	}
	return nil
}

// ImageAliasCmd groups alias commands.
type ImageAliasCmd struct {
	Add    ImageAliasAddCmd    `cmd:"" help:"Point an alias at an image."`
	Remove ImageAliasRemoveCmd `cmd:"" aliases:"rm" help:"Remove an alias."`
}

// ImageAliasAddCmd adds an alias.
type ImageAliasAddCmd struct {
	Alias string `arg:""`
	Image string `arg:"" help:"Alias, fingerprint or unique fingerprint prefix."`
}

// Run adds the alias.
func (c *ImageAliasAddCmd) Run(g *Globals) error {
	h, s, err := openImageStore(g)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := s.AddAlias(c.Image, c.Alias); err != nil {
		return imageErr(err)
	}
	img, err := s.Resolve(c.Alias)
	if err != nil {
		return imageErr(err)
	}
	if g.JSON {
		return writeJSON(g.Stdout, img)
	}
	return nil
}

// ImageAliasRemoveCmd removes an alias.
type ImageAliasRemoveCmd struct {
	Alias string `arg:""`
}

// Run removes the alias.
func (c *ImageAliasRemoveCmd) Run(g *Globals) error {
	h, s, err := openImageStore(g)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := s.RemoveAlias(c.Alias); err != nil {
		return imageErr(err)
	}
	if g.JSON {
		return writeJSON(g.Stdout, map[string]string{"removed": c.Alias})
	}
	return nil
}

// ImageDeleteCmd deletes images.
type ImageDeleteCmd struct {
	Images []string `arg:"" help:"Aliases, fingerprints or unique fingerprint prefixes."`
}

// Run deletes them, and their golden volumes first: an image with a
// container cloned from it is refused.
func (c *ImageDeleteCmd) Run(g *Globals) error {
	h, s, err := openImageStore(g)
	if err != nil {
		return err
	}
	defer h.Close()
	deleted := []*images.Image{}
	for _, ref := range c.Images {
		img, err := s.Resolve(ref)
		if err != nil {
			return imageErr(err)
		}
		if err := h.DestroyGoldens(context.Background(), img.Fingerprint); err != nil {
			return goldenErr(ref, err)
		}
		img, err = s.Delete(img.Fingerprint)
		if err != nil {
			return imageErr(err)
		}
		deleted = append(deleted, img)
	}
	if g.JSON {
		return writeJSON(g.Stdout, deleted)
	}
	return nil
}

// goldenErr is a failed destroy of image ref's golden volumes, with its
// exit code: an image in use is the user's to free (2), the rest the host's.
func goldenErr(ref string, err error) error {
	err = fmt.Errorf("delete image %s: %w", ref, err)
	if errors.Is(err, runner.ErrInUse) {
		return withCode(ExitUsage, err)
	}
	return withCode(ExitHost, err)
}

// ImageExportCmd exports an image.
type ImageExportCmd struct {
	Image string `arg:"" help:"Alias, fingerprint or unique fingerprint prefix."`
	Dir   string `arg:"" optional:"" default:"." help:"Directory to write into." type:"existingdir"`
}

// Run exports it.
func (c *ImageExportCmd) Run(g *Globals) error {
	h, s, err := openImageStore(g)
	if err != nil {
		return err
	}
	defer h.Close()
	img, err := s.Resolve(c.Image)
	if err != nil {
		return imageErr(err)
	}
	pr := newImageProgress(g, "export "+img.Fingerprint[:12])
	paths, err := s.Export(context.Background(), img, c.Dir, pr.Update)
	pr.Done()
	if err != nil {
		return imageErr(err)
	}
	if g.JSON {
		return writeJSON(g.Stdout, map[string]any{"fingerprint": img.Fingerprint, "files": paths})
	}
	for _, p := range paths {
		fmt.Fprintf(g.Stdout, "Image exported to: %s\n", p)
	}
	return nil
}

// ImageBuildCmd builds images from a spec file or from flags.
type ImageBuildCmd struct {
	File      string            `arg:"" optional:"" help:"Spec file with [image.*] tables (without it: --builder)." type:"existingfile"`
	Names     []string          `arg:"" optional:"" help:"Which [image.*] to build (default: all)."`
	Builder   string            `help:"Build without a spec: busybox or debootstrap." enum:",busybox,debootstrap" default:""`
	Suite     string            `help:"debootstrap: the suite." default:"bookworm"`
	Variant   string            `help:"debootstrap: the variant (minbase, buildd, ...)."`
	Component []string          `help:"debootstrap: archive components (default main)."`
	Package   []string          `help:"debootstrap: extra packages."`
	Mirror    string            `help:"debootstrap: the mirror (default: the host's apt mirror)."`
	Alias     []string          `help:"Alias for the built image (repeatable; with a spec: one image only)."`
	Property  map[string]string `help:"Image property key=value (repeatable)."`
}

// Run builds.
func (c *ImageBuildCmd) Run(g *Globals) error {
	h, s, err := openImageStore(g)
	if err != nil {
		return err
	}
	defer h.Close()
	var defs []spec.Image
	var set *spec.Set
	switch {
	case c.File != "" && c.Builder != "":
		return withCode(ExitUsage, errors.New("image build: give a spec FILE or --builder, not both"))
	case c.Builder != "":
		defs = []spec.Image{{Name: c.Builder, Builder: c.Builder, Suite: c.Suite, Variant: c.Variant,
			Components: c.Component, Packages: c.Package, Mirror: c.Mirror, Properties: c.Property}}
	case c.File != "":
		set, err = spec.Load([]string{c.File}, spec.Options{})
		if err != nil {
			return withCode(ExitUsage, err)
		}
		for _, d := range set.Images {
			if len(c.Names) == 0 || slices.Contains(c.Names, d.Name) {
				defs = append(defs, d)
			}
		}
		for _, n := range c.Names {
			if !containsImage(set.Images, n) {
				return withCode(ExitUsage, fmt.Errorf("image build: no [image.%s] in %s", n, c.File))
			}
		}
		if len(defs) == 0 {
			return withCode(ExitUsage, fmt.Errorf("image build: no [image.*] in %s", c.File))
		}
	default:
		return withCode(ExitUsage, errors.New("image build: give a spec FILE or --builder"))
	}
	if len(c.Alias) > 0 && len(defs) > 1 {
		return withCode(ExitUsage, errors.New("image build: --alias needs exactly one image"))
	}
	built := []*images.Image{}
	recipes := &recipeBuilder{g: g, set: set} // recipes (from) build in a container
	defer recipes.Close()
	for _, d := range defs {
		if d.From != "" {
			img, err := recipes.build(d, c.Alias)
			if err != nil {
				return err
			}
			built = append(built, img)
			if !g.JSON {
				fmt.Fprintf(g.Stdout, "%s: %s\n", d.Name, img.Fingerprint)
			}
			continue
		}
		pr := newImageProgress(g, "build "+d.Name)
		pr.Log("building")
		img, err := images.BuildSpec(context.Background(), s, d, images.SpecOptions{Aliases: c.Alias, Progress: pr.Update, Log: pr.Log})
		if err == nil && set != nil {
			img, err = s.NameForSpec(set.Name, d.Name, img.Fingerprint) // SET/NAME, as the runner's builds
		}
		pr.Done()
		if err != nil {
			return imageErr(err)
		}
		built = append(built, img)
		if !g.JSON {
			fmt.Fprintf(g.Stdout, "%s: %s\n", d.Name, img.Fingerprint)
		}
	}
	if g.JSON {
		return writeJSON(g.Stdout, built)
	}
	return nil
}

func containsImage(defs []spec.Image, name string) bool {
	for _, d := range defs {
		if d.Name == name {
			return true
		}
	}
	return false
}

// ImagePruneCmd prunes images.
type ImagePruneCmd struct {
	UnusedFor time.Duration `help:"Also delete images neither used nor imported for this long (e.g. 720h)."`
	DryRun    bool          `help:"Only list what would be deleted."`
}

// Run prunes.
func (c *ImagePruneCmd) Run(g *Globals) error {
	h, s, err := openImageStore(g)
	if err != nil {
		return err
	}
	defer h.Close()
	// The images stint's containers were made from, or that sets under
	// reconcile name, are never pruned (nor the bases of recipe results
	// that stay: Store.Prune).
	inUse, err := h.ImagesInUse()
	if err != nil {
		return withCode(ExitHost, fmt.Errorf("image prune: %w (nothing deleted; stint gc repairs broken records)", err))
	}
	keep := map[string]bool{}
	for fp := range inUse {
		keep[fp] = true
	}
	candidates, err := s.Prune(images.PruneOptions{UnusedFor: c.UnusedFor, DryRun: true, InUse: keep})
	if err != nil {
		return imageErr(err)
	}
	pruned := candidates
	if !c.DryRun {
		pruned = nil
		for _, img := range candidates {
			// Golden volumes first, as delete does; an image in use stays.
			if err := h.DestroyGoldens(context.Background(), img.Fingerprint); err != nil {
				if !errors.Is(err, runner.ErrInUse) {
					return goldenErr(img.Fingerprint[:12], err)
				}
				fmt.Fprintf(g.Stderr, "stint: kept %s: %v\n", img.Fingerprint[:12], err)
				continue
			}
			if _, err := s.Delete(img.Fingerprint); err != nil {
				return imageErr(err)
			}
			pruned = append(pruned, img)
		}
	}
	if g.JSON {
		if pruned == nil {
			pruned = []*images.Image{}
		}
		return writeJSON(g.Stdout, pruned)
	}
	for _, img := range pruned {
		verb := "deleted"
		if c.DryRun {
			verb = "would delete"
		}
		fmt.Fprintf(g.Stdout, "%s %s %s\n", verb, img.Fingerprint[:12], strings.Join(img.Aliases, ","))
	}
	return nil
}
