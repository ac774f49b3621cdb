package spec

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

var (
	storageKeys    = []string{"driver", "path", "size", "dataset", "vg", "thinpool"}
	storageDrivers = []string{"auto", "btrfs", "zfs", "lvm", "overlay", "dir"}
	imageKeys      = []string{"builder", "suite", "variant", "components", "mirror", "from", "packages", "hooks", "files", "properties", "source", "repositories", "recommends", "auto_update", "refresh"}
	hookKeys       = []string{"path", "before"}
	repoKeys       = []string{"uri", "suite", "components", "key"}
	builders       = []string{"busybox", "debootstrap"}
)

// hostPath resolves a host path written in a spec against the file's directory.
func hostPath(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// existing resolves a host path and reports it when it does not exist.
func (d *decoder) existing(s sv, what string) string {
	p := hostPath(d.f.dir, s.V)
	if _, err := os.Stat(p); err != nil {
		d.ps.addf(s.At, "", "%s %q does not exist (resolved to %s)", what, s.V, p)
	}
	return p
}

func (d *decoder) storage(v any, p string) Storage {
	st := Storage{Driver: "auto"}
	m, ok := d.table(v, p)
	if !ok {
		return st
	}
	d.each(m, p, storageKeys, func(k string, v any, kp string) {
		switch k {
		case "driver":
			if s, ok := d.enum(v, kp, storageDrivers...); ok {
				st.Driver = s.V
			}
		case "path":
			if s, ok := d.str(v, kp); ok {
				st.Path = hostPath(d.f.dir, s.V)
			}
		case "size":
			if n := d.size(v, kp); n != nil {
				st.Size = n.V
			}
		case "dataset", "vg", "thinpool":
			s, ok := d.str(v, kp)
			if !ok {
				return
			}
			switch k {
			case "dataset":
				st.Dataset = s.V
			case "vg":
				st.VG = s.V
			default:
				st.Thinpool = s.V
			}
		}
	})
	// Options of one driver given to another are mistakes, not no-ops.
	only := func(key string, set bool, drivers ...string) {
		if set && !contains(drivers, st.Driver) {
			d.problem(join(p, key), "", "%s applies only to driver %s, not %q", key, drivers[len(drivers)-1], st.Driver)
		}
	}
	only("size", st.Size != 0, "auto", "btrfs")
	only("dataset", st.Dataset != "", "zfs")
	only("vg", st.VG != "", "lvm")
	only("thinpool", st.Thinpool != "", "lvm")
	only("path", st.Path != "", "auto", "btrfs", "overlay", "dir")
	if st.Driver == "lvm" && st.VG == "" {
		d.problem(p, `add vg = "NAME"`, "driver lvm needs a volume group")
	}
	if st.Driver == "zfs" && st.Dataset == "" {
		d.problem(p, `add dataset = "pool/stint"`, "driver zfs needs a dataset")
	}
	return st
}

// decodeImage decodes an [image.NAME] table (references to other images are
// checked once the whole set is known).
func (d *decoder) decodeImage(name string, v any, p string) (Image, *sv) {
	img := Image{Name: name}
	var from *sv
	m, ok := d.table(v, p)
	if !ok {
		return img, nil
	}
	d.each(m, p, imageKeys, func(k string, v any, kp string) {
		switch k {
		case "builder":
			if s, ok := d.enum(v, kp, builders...); ok {
				img.Builder = s.V
			}
		case "suite", "variant", "mirror":
			s, ok := d.str(v, kp)
			if !ok {
				return
			}
			switch k {
			case "suite":
				img.Suite = s.V
			case "variant":
				img.Variant = s.V
			default:
				img.Mirror = s.V
			}
		case "components", "packages":
			list, _ := d.strList(v, kp, false)
			for _, s := range list {
				if k == "components" {
					img.Components = append(img.Components, s.V)
				} else {
					img.Packages = append(img.Packages, s.V)
				}
			}
		case "from":
			if s, ok := d.str(v, kp); ok {
				from = &s
				img.From = s.V
			}
		case "hooks":
			d.hooks(&img, v, kp)
		case "repositories":
			img.Repositories = d.repositories(v, kp)
		case "recommends":
			if b := d.boolean(v, kp); b != nil {
				img.Recommends = &b.V
			}
		case "files":
			img.Files = d.recipeFiles(v, kp)
		case "properties":
			props := d.strMap(v, kp)
			if len(props) > 0 {
				img.Properties = map[string]string{}
			}
			for k, s := range props {
				img.Properties[k] = s.V
			}
		case "auto_update":
			if b := d.boolean(v, kp); b != nil {
				img.AutoUpdate = &b.V
			}
		case "refresh":
			if t := d.duration(v, kp); t != nil {
				r := Duration(t.V)
				img.Refresh = &r
			}
		case "source":
			if ref, ok := v.(string); ok && pullSourceRE.MatchString(ref) {
				img.Pull = d.pullRef(sv{V: ref, At: d.at(kp)})
				return
			}
			list, ok := d.strList(v, kp, true)
			if !ok {
				return
			}
			if len(list) < 1 || len(list) > 2 {
				d.problem(kp, "a unified tarball, or [metadata, rootfs] for a split image", "expected 1 or 2 files, got %d", len(list))
			}
			for _, s := range list {
				img.Source = append(img.Source, d.existing(s, "image file"))
			}
		}
	})
	d.imageKind(img, from != nil, m, p)
	return img, from
}

// recipeFiles decodes a recipe's files = { "/container/path" = "host file" }
// (nil when it is not a table).
func (d *decoder) recipeFiles(v any, kp string) map[string]string {
	fm, ok := d.table(v, kp)
	if !ok {
		return nil
	}
	files := map[string]string{}
	d.each(fm, kp, nil, func(target string, v any, fp string) {
		s, ok := d.str(v, fp)
		if !ok {
			return
		}
		if !path.IsAbs(target) {
			d.problem(fp, "", "container path %q is not absolute", target)
		}
		files[target] = d.existing(s, "file")
	})
	return files
}

// imageKind checks that an image is built, derived or imported, and has
// only the keys of its kind.
func (d *decoder) imageKind(img Image, from bool, m map[string]any, p string) {
	kinds := 0
	for _, set := range []bool{img.Builder != "", from, m["source"] != nil} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds == 0 && m["builder"] == nil:
		d.problem(p, `set builder = "busybox" | "debootstrap", from = "IMAGE" or source = "FILE"`, "image has no builder, from or source")
	case kinds > 1:
		d.problem(p, "", "builder, from and source are exclusive: an image is built, derived or imported")
	}
	onlyFor := func(key string, set bool, ok bool, what string) {
		if set && !ok {
			d.problem(join(p, key), "", "%s applies only to %s", key, what)
		}
	}
	debootstrap := img.Builder == "debootstrap"
	onlyFor("suite", img.Suite != "", debootstrap, "builder debootstrap")
	onlyFor("variant", img.Variant != "", debootstrap, "builder debootstrap")
	onlyFor("components", len(img.Components) > 0, debootstrap, "builder debootstrap")
	onlyFor("mirror", img.Mirror != "", debootstrap, "builder debootstrap")
	onlyFor("packages", len(img.Packages) > 0, debootstrap || from, "builder debootstrap or from")
	imported := m["source"] != nil
	onlyFor("hooks", len(img.Hooks) > 0, !imported, "built or derived images, not imported ones")
	onlyFor("hooks", len(img.HooksBeforePackages) > 0, from, `from images (a hook with before = "packages")`)
	onlyFor("repositories", len(img.Repositories) > 0, from, "from images (recipes)")
	onlyFor("recommends", img.Recommends != nil, from, "from images (recipes)")
	onlyFor("files", len(img.Files) > 0, !imported, "built or derived images, not imported ones")
	onlyFor("auto_update", img.AutoUpdate != nil, img.Pull != "", "images pulled from a remote (source = \"REMOTE:ALIAS\")")
	onlyFor("refresh", img.Refresh != nil, img.Pull != "", "images pulled from a remote (source = \"REMOTE:ALIAS\")")
}

// hooks decodes a recipe's hooks: each a host path, or a table
// { path = "...", before = "packages" } for a hook that runs before the
// packages are installed.
func (d *decoder) hooks(img *Image, v any, p string) {
	arr, ok := v.([]any)
	if !ok {
		d.wrongType(p, "an array of hook files (strings, or tables with path and before)", v)
		return
	}
	for i, e := range arr {
		ep := p + "[" + strconv.Itoa(i) + "]"
		if s, ok := e.(string); ok {
			img.Hooks = append(img.Hooks, d.existing(sv{V: s, At: d.at(ep)}, "hook"))
			continue
		}
		m, ok := e.(map[string]any)
		if !ok {
			d.wrongType(ep, `a hook file, or { path = "hook.sh", before = "packages" }`, e)
			continue
		}
		var path *sv
		before := false
		d.each(m, ep, hookKeys, func(k string, v any, kp string) {
			switch k {
			case "path":
				if s, ok := d.str(v, kp); ok {
					path = &s
				}
			case "before":
				if _, ok := d.enum(v, kp, "packages"); ok {
					before = true
				}
			}
		})
		if path == nil {
			if m["path"] == nil {
				d.problem(ep, `add path = "hook.sh"`, "hook without a path")
			}
			continue
		}
		h := d.existing(*path, "hook")
		if before {
			img.HooksBeforePackages = append(img.HooksBeforePackages, h)
		} else {
			img.Hooks = append(img.Hooks, h)
		}
	}
}

// uriSchemeRE: an apt source's URI starts with a scheme (http:, https:,
// file:, mirror+file:, ...).
var uriSchemeRE = lazyRE(`^[a-z][a-z0-9+.-]*:\S+$`)

// repositories decodes [image.X.repositories.NAME] tables, sorted by name.
func (d *decoder) repositories(v any, p string) []Repository {
	m, ok := d.table(v, p)
	if !ok {
		return nil
	}
	var out []Repository
	d.each(m, p, nil, func(name string, v any, rp string) {
		if !nameRE.MatchString(name) {
			d.problem(rp, "letters, digits, - and _, at most 63", "bad repository name %q", name)
		}
		rm, ok := d.table(v, rp)
		if !ok {
			return
		}
		r := Repository{Name: name}
		d.each(rm, rp, repoKeys, func(k string, v any, kp string) {
			switch k {
			case "uri", "suite":
				s, ok := d.str(v, kp)
				switch {
				case !ok:
				case k == "uri" && !uriSchemeRE.MatchString(s.V):
					d.problem(kp, `for example uri = "http://apt.example.org/debian"`, "not a URI: %q", s.V)
				case k == "uri":
					r.URI = s.V
				case strings.ContainsAny(s.V, " \t\n"):
					d.problem(kp, "", "suite %q has white space", s.V)
				default:
					r.Suite = s.V
				}
			case "components":
				list, _ := d.strList(v, kp, false)
				for _, s := range list {
					if s.V == "" || strings.ContainsAny(s.V, " \t\n") {
						d.problem(kp, "", "bad component %q", s.V)
						continue
					}
					r.Components = append(r.Components, s.V)
				}
			case "key":
				if s, ok := d.str(v, kp); ok {
					r.Key = d.existing(s, "key")
				}
			}
		})
		if rm["uri"] == nil {
			d.problem(rp, `add uri = "http://apt.example.org/debian"`, "repository without a uri")
		}
		if rm["suite"] == nil {
			d.problem(rp, `add suite = "bookworm" (or "./" for a flat repository)`, "repository without a suite")
		}
		// apt's rule: a suite ending in / is a flat repository, without
		// components; any other suite needs them.
		flat := strings.HasSuffix(r.Suite, "/")
		switch {
		case r.Suite != "" && flat && len(r.Components) > 0:
			d.problem(join(rp, "components"), "", "a flat repository (suite ending in /) has no components")
		case r.Suite != "" && !flat && len(r.Components) == 0:
			d.problem(rp, `add components = ["main"]`, "repository without components")
		}
		out = append(out, r)
	})
	return out
}

// pullRef is a remote image reference as a spec wrote it, with an
// "oci-layout:" directory resolved against the spec file's directory (as
// every host path in a spec is) and required to exist.
func (d *decoder) pullRef(ref sv) string {
	out, err := LayoutRef(ref.V, d.f.dir)
	if err != nil {
		d.ps.addf(ref.At, "", "%v", err)
	}
	return out
}

// LayoutRef resolves the directory of an "oci-layout:DIR[:TAG]" reference
// against dir, the spec file's directory, and checks that it exists; any
// other reference is returned as it is.
func LayoutRef(ref, dir string) (string, error) {
	rest, ok := strings.CutPrefix(ref, layoutPrefix)
	if !ok {
		return ref, nil
	}
	layout, tag := rest, ""
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		layout, tag = rest[:i], rest[i+1:]
	}
	if layout == "" {
		return ref, fmt.Errorf("image %q: no OCI layout directory", ref)
	}
	p := hostPath(dir, layout)
	out := layoutPrefix + p
	if tag != "" {
		out += ":" + tag
	}
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		return out, fmt.Errorf("OCI layout %q does not exist (resolved to %s)", layout, p)
	}
	return out, nil
}

// layoutPrefix starts a local OCI layout reference (images/oci.LayoutPrefix;
// spec imports none of stint's packages).
const layoutPrefix = "oci-layout:"
