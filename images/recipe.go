package images

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"time"

	"github.com/stintdev/stint/spec"
)

// recipeBuilderVersion changes whenever the way recipes are built or packed
// changes, so that a new stint rebuilds instead of reusing an old image.
const recipeBuilderVersion = "1"

// Recipe is what an [image.X] from = "Y" table builds from, with the
// contents it reads: everything that goes into its cache key.
type Recipe struct {
	Name       string
	Base       *Image // the resolved base image
	Packages   []string
	Hooks      []RecipeFile // in order
	Files      []RecipeFile // sorted by Target
	Properties map[string]string
	// HooksBefore run before the packages are installed, in order.
	HooksBefore []RecipeFile
	// Repositories are apt sources added before the packages, by name.
	Repositories []RecipeRepo
	// Recommends: see spec.Image.Recommends.
	Recommends *bool
}

// RecipeRepo is an apt source of a recipe, with its signing key read
// from the host.
type RecipeRepo struct {
	spec.Repository
	KeyData []byte // nil without a key
}

// RecipeFile is a hook or a file of a recipe, read from the host.
type RecipeFile struct {
	Source string      // the host path
	Target string      // the container path (files; "" for hooks)
	Mode   fs.FileMode // permission bits, setuid, setgid and sticky
	Data   []byte
}

// LoadRecipe reads the hooks and files def names, for the recipe on base.
func LoadRecipe(def spec.Image, base *Image) (*Recipe, error) {
	if def.From == "" {
		return nil, fmt.Errorf("image %s: not a recipe (no from)", def.Name)
	}
	r := &Recipe{Name: def.Name, Base: base, Packages: def.Packages, Properties: def.Properties, Recommends: def.Recommends}
	for _, h := range def.HooksBeforePackages {
		f, err := readRecipeFile(h)
		if err != nil {
			return nil, fmt.Errorf("image %s: hook %s: %w", def.Name, h, err)
		}
		r.HooksBefore = append(r.HooksBefore, f)
	}
	for _, h := range def.Hooks {
		f, err := readRecipeFile(h)
		if err != nil {
			return nil, fmt.Errorf("image %s: hook %s: %w", def.Name, h, err)
		}
		r.Hooks = append(r.Hooks, f)
	}
	for _, repo := range def.Repositories {
		rr := RecipeRepo{Repository: repo}
		if repo.Key != "" {
			f, err := readRecipeFile(repo.Key)
			if err != nil {
				return nil, fmt.Errorf("image %s: repository %s: key: %w", def.Name, repo.Name, err)
			}
			rr.KeyData = f.Data
		}
		r.Repositories = append(r.Repositories, rr)
	}
	for target, src := range def.Files {
		if !path.IsAbs(target) || path.Clean(target) != target || target == "/" {
			return nil, fmt.Errorf("image %s: file %s: the container path must be absolute and clean", def.Name, target)
		}
		f, err := readRecipeFile(src)
		if err != nil {
			return nil, fmt.Errorf("image %s: file %s: %w", def.Name, target, err)
		}
		f.Target = target
		r.Files = append(r.Files, f)
	}
	sort.Slice(r.Files, func(i, j int) bool { return r.Files[i].Target < r.Files[j].Target })
	return r, nil
}

func readRecipeFile(p string) (RecipeFile, error) {
	st, err := os.Stat(p)
	if err != nil {
		return RecipeFile{}, err
	}
	if !st.Mode().IsRegular() {
		return RecipeFile{}, fmt.Errorf("%s is not a regular file", p)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return RecipeFile{}, err
	}
	mode := st.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	return RecipeFile{Source: p, Mode: mode, Data: data}, nil
}

// Key is the recipe's cache key, recorded as the built image's stint.build
// property: a sha256 over the base's fingerprint, the packages (sorted),
// the hooks' contents in order, the files' container paths, modes and
// contents, and the properties. Host paths and the recipe's name are left
// out: moving a hook or renaming the image does not rebuild it.
func (r *Recipe) Key() (string, error) {
	if r.Base == nil {
		return "", fmt.Errorf("image %s: recipe without a resolved base", r.Name)
	}
	pkgs := append([]string{}, r.Packages...)
	sort.Strings(pkgs)
	hooks := []string{}
	for _, h := range r.Hooks {
		hooks = append(hooks, sha256Hex(h.Data))
	}
	type file struct {
		Target string `json:"target"`
		Mode   uint32 `json:"mode"`
		SHA256 string `json:"sha256"`
	}
	files := []file{}
	for _, f := range r.Files {
		files = append(files, file{Target: f.Target, Mode: uint32(f.Mode), SHA256: sha256Hex(f.Data)})
	}
	props := r.Properties
	if props == nil {
		props = map[string]string{}
	}
	// buildKey is JSON: maps are encoded with sorted keys, so the encoding
	// is canonical.
	parts := []any{"recipe", recipeBuilderVersion, r.Base.Fingerprint, pkgs, hooks, files, props}
	if order := r.orderKey(); order != nil {
		// Only when used: a recipe without them keeps the key it had.
		parts = append(parts, order)
	}
	return buildKey(parts...)
}

// orderKey is what the hooks before packages, repositories and recommends
// add to the key, or nil when the recipe has none of them.
func (r *Recipe) orderKey() any {
	if len(r.HooksBefore) == 0 && len(r.Repositories) == 0 && r.Recommends == nil {
		return nil
	}
	type repo struct {
		Name       string   `json:"name"`
		URI        string   `json:"uri"`
		Suite      string   `json:"suite"`
		Components []string `json:"components"`
		KeySHA256  string   `json:"key_sha256"`
	}
	k := struct {
		HooksBefore  []string `json:"hooks_before"`
		Repositories []repo   `json:"repositories"`
		Recommends   *bool    `json:"recommends"`
	}{HooksBefore: []string{}, Repositories: []repo{}, Recommends: r.Recommends}
	for _, h := range r.HooksBefore {
		k.HooksBefore = append(k.HooksBefore, sha256Hex(h.Data))
	}
	for _, rr := range r.Repositories {
		key := ""
		if rr.KeyData != nil {
			key = sha256Hex(rr.KeyData)
		}
		k.Repositories = append(k.Repositories, repo{rr.Name, rr.URI, rr.Suite, rr.Components, key})
	}
	return k
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// LockBuild returns the image built with key (the stint.build property),
// with aliases added; or, when there is none, holds the build lock for key
// across stint processes (release it with unlock) after checking again
// under it, so that concurrent builds of the same inputs build once.
func (s *Store) LockBuild(ctx context.Context, key string, aliases []string) (img *Image, unlock func(), err error) {
	return s.cachedOrLock(ctx, key, aliases)
}

// PublishOptions tune Publish.
type PublishOptions struct {
	Name       string            // the recipe's name, for the default description
	Key        string            // recorded as the stint.build property
	Properties map[string]string // over the base's
	Aliases    []string
	// Owner maps a file's owner on disk to the owner in the image, for the
	// rootfs of an unprivileged container (host ids shifted by its id map);
	// nil keeps the owners as they are.
	Owner    func(uid, gid int) (int, int, error)
	Progress func(done, total int64)
}

// Publish packs the directory rootfs as a new unified image on top of base
// and imports it: base's architecture and templates, base's properties with
// opts.Properties merged over them, owners mapped back by opts.Owner.
func Publish(ctx context.Context, s *Store, rootfs string, base *Image, opts PublishOptions) (*Image, error) {
	mc, _, err := readMetaTar(base.Path(), true)
	if err != nil {
		return nil, fmt.Errorf("publish %s: base image %s: %w", opts.Name, base.Fingerprint, err)
	}
	now := time.Now().UTC()
	props := map[string]string{}
	for k, v := range base.Properties {
		props[k] = v
	}
	props["description"] = fmt.Sprintf("%s (recipe on %s, built by stint)", opts.Name, firstOf(base.Description(), base.Fingerprint[:12]))
	props["serial"] = now.Format("20060102_1504")
	for k, v := range opts.Properties {
		props[k] = v
	}
	delete(props, BuildProperty)
	if opts.Key != "" {
		props[BuildProperty] = opts.Key
	}
	// The base stays while this result is cached (Prune): the recipe's
	// cache key names the base's fingerprint.
	props[BaseProperty] = base.Fingerprint
	meta := &Metadata{
		Architecture: base.Architecture,
		CreationDate: now.Unix(),
		Properties:   props,
		Templates:    base.Templates,
	}
	tmp, release, err := s.TempFile(".tmp-build-")
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", opts.Name, err)
	}
	defer release()
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	u := newUnifiedWriter(tmp, now)
	if opts.Owner != nil {
		u.owner = func(hdr *tar.Header) error {
			uid, gid, err := opts.Owner(hdr.Uid, hdr.Gid)
			if err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
			hdr.Uid, hdr.Gid = uid, gid
			unshiftCaps(hdr)
			return nil
		}
	}
	err = u.writeMeta(meta, mc.templates)
	if err == nil {
		err = u.packDir(ctx, rootfs)
	}
	if err == nil {
		err = u.Close()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("publish %s: pack %s: %w", opts.Name, rootfs, err)
	}
	img, err := s.Import(ctx, []string{tmp.Name()}, ImportOptions{Aliases: opts.Aliases, Progress: opts.Progress})
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", opts.Name, err)
	}
	return img, nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// unshiftCaps turns a file capability written inside a user namespace
// (VFS_CAP_REVISION_3, which carries the namespace's root host uid) into a
// plain revision 2 one, as it would be on the image's own host: otherwise
// the capability only works under the same id map.
func unshiftCaps(hdr *tar.Header) {
	const key = "SCHILY.xattr.security.capability"
	v, ok := hdr.PAXRecords[key]
	if !ok || len(v) != 24 {
		return
	}
	b := []byte(v)
	magic := binary.LittleEndian.Uint32(b[0:4])
	if magic&0xff000000 != 0x03000000 {
		return
	}
	binary.LittleEndian.PutUint32(b[0:4], 0x02000000|magic&0x00ffffff)
	hdr.PAXRecords[key] = string(b[:20])
}
