package images

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/stintdev/stint/internal/sysexec"
)

// debootstrapBuilderVersion changes whenever the packing changes.
const debootstrapBuilderVersion = "1"

// DebootstrapOptions configure BuildDebootstrap.
type DebootstrapOptions struct {
	Suite      string   // required, e.g. bookworm
	Variant    string   // minbase, buildd, ...; "" is debootstrap's default
	Components []string // default: main
	Packages   []string // --include
	Mirror     string   // default: the host's apt mirror (see HostMirror)
	Arch       string   // Debian architecture; default: the host's (dpkg --print-architecture)
	Aliases    []string
	Properties map[string]string // on top of os, release, description
	// Log receives debootstrap's output lines, for progress display.
	Log      func(line string)
	Progress func(done, total int64) // the import's copy progress
}

// BuildDebootstrap runs debootstrap into a temporary directory of the store,
// packs it as a unified tarball and imports it. Builds are cached by a hash
// of the options (property stint.build): the same options return the
// existing image without running debootstrap again.
func BuildDebootstrap(ctx context.Context, s *Store, opts DebootstrapOptions) (*Image, error) {
	if opts.Suite == "" {
		return nil, fmt.Errorf("build debootstrap image: suite is required")
	}
	if len(opts.Components) == 0 {
		opts.Components = []string{"main"}
	}
	if opts.Mirror == "" {
		m, err := HostMirror()
		if err != nil {
			return nil, fmt.Errorf("build debootstrap image: %w", err)
		}
		opts.Mirror = m
	}
	if opts.Arch == "" {
		out, err := sysexec.Run(ctx, "dpkg", "--print-architecture")
		if err != nil {
			return nil, fmt.Errorf("build debootstrap image: %w", err)
		}
		opts.Arch = strings.TrimSpace(string(out))
	}
	pkgs := append([]string(nil), opts.Packages...)
	sort.Strings(pkgs)
	key, err := buildKey("debootstrap", debootstrapBuilderVersion, opts.Suite, opts.Variant, opts.Components, pkgs, opts.Mirror, opts.Arch, opts.Properties)
	if err != nil {
		return nil, err
	}
	img, unlock, err := s.cachedOrLock(ctx, key, opts.Aliases)
	if img != nil || err != nil {
		return img, err
	}
	defer unlock()
	tmp, release, err := s.TempDir(".tmp-debootstrap-")
	if err != nil {
		return nil, fmt.Errorf("build debootstrap image: %w", err)
	}
	defer release()
	defer os.RemoveAll(tmp)
	target := filepath.Join(tmp, "rootfs")
	args := []string{"--arch=" + opts.Arch, "--components=" + strings.Join(opts.Components, ",")}
	if opts.Variant != "" {
		args = append(args, "--variant="+opts.Variant)
	}
	if len(pkgs) > 0 {
		args = append(args, "--include="+strings.Join(pkgs, ","))
	}
	args = append(args, opts.Suite, target, opts.Mirror)
	if opts.Log != nil {
		opts.Log("debootstrap " + strings.Join(args, " "))
	}
	if _, err := sysexec.Run(ctx, "debootstrap", args...); err != nil {
		return nil, fmt.Errorf("build debootstrap image %s: %w", opts.Suite, err)
	}
	// apt's caches are not part of an image.
	for _, d := range []string{"var/cache/apt/archives", "var/lib/apt/lists"} {
		ents, _ := os.ReadDir(filepath.Join(target, d))
		for _, e := range ents {
			if e.Type().IsRegular() {
				os.Remove(filepath.Join(target, d, e.Name()))
			}
		}
	}
	created := time.Now().UTC()
	props := map[string]string{
		"os":           "debian",
		"release":      opts.Suite,
		"variant":      opts.Variant,
		"architecture": Arch(goArchOfDebian(opts.Arch)),
		"description":  fmt.Sprintf("Debian %s %s (debootstrap %s, built by stint)", opts.Suite, opts.Arch, created.Format("20060102_1504")),
		"serial":       created.Format("20060102_1504"),
		BuildProperty:  key,
	}
	for k, v := range opts.Properties {
		props[k] = v
	}
	meta := &Metadata{
		Architecture: props["architecture"],
		CreationDate: created.Unix(),
		Properties:   props,
		Templates: map[string]Template{
			"/etc/hostname": {When: []string{"create", "copy"}, Template: "hostname.tpl"},
			"/etc/hosts":    {When: []string{"create", "copy"}, Template: "hosts.tpl"},
		},
	}
	tarball := filepath.Join(tmp, "image.tar.gz")
	f, err := os.Create(tarball)
	if err != nil {
		return nil, fmt.Errorf("build debootstrap image: %w", err)
	}
	defer f.Close()
	u := newUnifiedWriter(f, created)
	err = u.writeMeta(meta, map[string][]byte{
		"hostname.tpl": []byte("{{ container.name }}\n"),
		"hosts.tpl":    []byte("127.0.0.1\tlocalhost\n127.0.1.1\t{{ container.name }}\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
	})
	if err == nil {
		err = u.packDir(ctx, target)
	}
	if err == nil {
		err = u.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("build debootstrap image %s: pack: %w", opts.Suite, err)
	}
	return s.Import(ctx, []string{tarball}, ImportOptions{Aliases: opts.Aliases, Progress: opts.Progress})
}

func goArchOfDebian(a string) string {
	switch a {
	case "i386":
		return "386"
	case "armhf", "armel":
		return "arm"
	case "ppc64el":
		return "ppc64le"
	}
	return a
}

// HostMirror is the first Debian archive URI of the host's apt sources
// (/etc/apt/sources.list and sources.list.d/*.list, *.sources), skipping
// security archives: the mirror the host already reaches.
func HostMirror() (string, error) {
	files := []string{"/etc/apt/sources.list"}
	for _, g := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	for _, f := range files {
		if uri := mirrorIn(f); uri != "" {
			return uri, nil
		}
	}
	return "", fmt.Errorf("no Debian mirror in the host's apt sources (set mirror)")
}

func mirrorIn(file string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	deb822 := strings.HasSuffix(file, ".sources")
	sc := bufio.NewScanner(f)
	isDeb := false
	var uris []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if deb822 {
			k, v, ok := strings.Cut(line, ":")
			switch {
			case line == "":
				if u := pickURI(isDeb, uris); u != "" {
					return u
				}
				isDeb, uris = false, nil
			case ok && strings.EqualFold(k, "Types"):
				isDeb = contains(strings.Fields(v), "deb")
			case ok && strings.EqualFold(k, "URIs"):
				uris = strings.Fields(v)
			}
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		i := 1
		if strings.HasPrefix(fields[1], "[") {
			for i < len(fields) && !strings.HasSuffix(fields[i], "]") {
				i++
			}
			i++
		}
		if i < len(fields) {
			if u := pickURI(true, fields[i:i+1]); u != "" {
				return u
			}
		}
	}
	return pickURI(isDeb && deb822, uris)
}

func pickURI(isDeb bool, uris []string) string {
	if !isDeb {
		return ""
	}
	for _, u := range uris {
		if strings.Contains(u, "security") || !strings.Contains(u, "debian") {
			continue
		}
		return u
	}
	return ""
}
