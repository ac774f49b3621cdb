package spec

import (
	"os"
	"path"
	"path/filepath"
)

var (
	storageKeys    = []string{"driver", "path", "size", "dataset", "vg", "thinpool"}
	storageDrivers = []string{"auto", "btrfs", "zfs", "lvm", "overlay", "dir"}
	imageKeys      = []string{"builder", "suite", "variant", "components", "mirror", "from", "packages", "hooks", "files", "properties", "source"}
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
			list, _ := d.strList(v, kp, false)
			for _, s := range list {
				img.Hooks = append(img.Hooks, d.existing(s, "hook"))
			}
		case "files":
			fm, ok := d.table(v, kp)
			if !ok {
				return
			}
			img.Files = map[string]string{}
			d.each(fm, kp, nil, func(target string, v any, fp string) {
				s, ok := d.str(v, fp)
				if !ok {
					return
				}
				if !path.IsAbs(target) {
					d.problem(fp, "", "container path %q is not absolute", target)
				}
				img.Files[target] = d.existing(s, "file")
			})
		case "properties":
			props := d.strMap(v, kp)
			if len(props) > 0 {
				img.Properties = map[string]string{}
			}
			for k, s := range props {
				img.Properties[k] = s.V
			}
		case "source":
			if ref, ok := v.(string); ok && pullSourceRE.MatchString(ref) {
				img.Pull = ref
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
	onlyFor("files", len(img.Files) > 0, !imported, "built or derived images, not imported ones")
}
