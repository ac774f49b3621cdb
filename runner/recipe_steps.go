package runner

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/stintdev/stint/images"
)

// A recipe's provisioning is a list of steps, made by recipeSteps from the
// recipe and the base's package manager before anything runs (pure, so its
// order and commands are unit-tested), then carried out in the build
// container by recipeBuild.run:
//
//  1. repositories: each apt source's signing key and its deb822 source
//     file (apt bases only);
//  2. hooks marked before = "packages", in order;
//  3. packages, with the base's package manager (apt-get, apk, dnf);
//  4. files;
//  5. the other hooks, in order.
//
// Files come after the packages so that they win over what a package
// installs (a configuration file); what must be in place before the
// packages (an apt source, a pinning or dpkg setting) is a repository or a
// hook before packages.

// pkgManager is the package manager a build container has.
type pkgManager string

const (
	pmNone pkgManager = ""
	pmApt  pkgManager = "apt-get"
	pmApk  pkgManager = "apk"
	pmDnf  pkgManager = "dnf"
)

// Where a recipe's apt sources and their keys go in the image.
const (
	aptSourcesDir = "/etc/apt/sources.list.d"
	aptKeyringDir = "/etc/apt/keyrings"
)

// recipeStep is one step: a file written into the container (put), or a
// command run in it as root (argv); hook is set for a hook's command.
type recipeStep struct {
	what string // the "+ ..." line of the build's output; "" prints none
	put  *images.RecipeFile
	argv []string
	hook *HookError // Status is filled in when it fails
}

// recipeSteps is rec's provisioning on a base with package manager pm.
func recipeSteps(rec *images.Recipe, pm pkgManager) ([]recipeStep, error) {
	var steps []recipeStep
	if len(rec.Repositories) > 0 && pm != pmApt {
		return nil, fmt.Errorf("image %s: repositories are apt sources, and the base image %s has no apt-get", rec.Name, rec.Base.Fingerprint[:12])
	}
	for _, r := range rec.Repositories {
		steps = append(steps, repoSteps(r)...)
	}
	steps = append(steps, hookSteps(rec, rec.HooksBefore, true)...)
	if len(rec.Packages) > 0 {
		script, err := packageScript(pm, rec.Recommends)
		if err != nil {
			return nil, fmt.Errorf("image %s: packages %s: the base image %s has %w", rec.Name, strings.Join(rec.Packages, ", "), rec.Base.Fingerprint[:12], err)
		}
		steps = append(steps, recipeStep{
			what: "install " + strings.Join(rec.Packages, " "),
			argv: append([]string{"/bin/sh", "-c", script, "sh"}, rec.Packages...),
		})
	}
	for i := range rec.Files {
		f := &rec.Files[i]
		steps = append(steps, recipeStep{what: fmt.Sprintf("copy %s to %s", f.Source, f.Target), put: f})
	}
	return append(steps, hookSteps(rec, rec.Hooks, false)...), nil
}

// packageScript installs "$@" with pm; recommends nil keeps its default.
func packageScript(pm pkgManager, recommends *bool) (string, error) {
	switch pm {
	case pmApt:
		opt := ""
		if recommends != nil && *recommends {
			opt = " --install-recommends"
		} else if recommends != nil {
			opt = " --no-install-recommends"
		}
		return `export DEBIAN_FRONTEND=noninteractive; apt-get update && apt-get install -y` + opt + ` "$@" && apt-get clean && rm -rf /var/lib/apt/lists/*`, nil
	case pmApk:
		return `apk add --no-cache "$@"`, nil // apk has no recommended packages
	case pmDnf:
		opt := ""
		if recommends != nil {
			opt = fmt.Sprintf(" --setopt=install_weak_deps=%t", *recommends)
		}
		return `dnf install -y` + opt + ` "$@" && dnf clean all`, nil
	}
	return "", fmt.Errorf("no package manager stint knows (apt-get, apk, dnf)")
}

// repoSteps writes r's key (when it has one) and its deb822 source.
func repoSteps(r images.RecipeRepo) []recipeStep {
	var steps []recipeStep
	src := fmt.Sprintf("Types: deb\nURIs: %s\nSuites: %s\n", r.URI, r.Suite)
	if len(r.Components) > 0 {
		src += "Components: " + strings.Join(r.Components, " ") + "\n"
	}
	if r.KeyData != nil {
		// apt reads an armored key only from a .asc file.
		ext := ".gpg"
		if bytes.HasPrefix(bytes.TrimSpace(r.KeyData), []byte("-----BEGIN PGP")) {
			ext = ".asc"
		}
		key := aptKeyringDir + "/stint-" + r.Name + ext
		steps = append(steps, recipeStep{what: fmt.Sprintf("key of repository %s to %s", r.Name, key),
			put: &images.RecipeFile{Source: r.Key, Target: key, Mode: 0o644, Data: r.KeyData}})
		src += "Signed-By: " + key + "\n"
	}
	target := aptSourcesDir + "/stint-" + r.Name + ".sources"
	return append(steps, recipeStep{what: fmt.Sprintf("repository %s to %s", r.Name, target),
		put: &images.RecipeFile{Target: target, Mode: 0o644, Data: []byte(src)}})
}

// hookSteps copies each hook in and runs it with /bin/sh, in order.
func hookSteps(rec *images.Recipe, hooks []images.RecipeFile, before bool) []recipeStep {
	var steps []recipeStep
	prefix := ""
	if before {
		prefix = "pre-"
	}
	for i, h := range hooks {
		target := fmt.Sprintf("%s/%s%02d-%s", hookDir, prefix, i+1, filepath.Base(h.Source))
		steps = append(steps,
			recipeStep{put: &images.RecipeFile{Source: h.Source, Target: target, Mode: 0o700, Data: h.Data}},
			recipeStep{what: "hook " + filepath.Base(h.Source), argv: []string{"/bin/sh", target},
				hook: &HookError{Image: rec.Name, Hook: h.Source, Index: i + 1, BeforePackages: before}})
	}
	return steps
}

// packageManager is the package manager of the build container.
func (b *recipeBuild) packageManager() pkgManager {
	switch {
	case b.has("/usr/bin/apt-get"):
		return pmApt
	case b.has("/sbin/apk"), b.has("/usr/bin/apk"):
		return pmApk
	case b.has("/usr/bin/dnf"):
		return pmDnf
	}
	return pmNone
}

// run carries out steps in the build container; the first failure stops.
func (b *recipeBuild) run(ctx context.Context, steps []recipeStep) error {
	for _, s := range steps {
		if s.what != "" && s.put != nil {
			fmt.Fprintf(b.out, "+ %s\n", s.what)
		}
		if s.put != nil {
			if err := b.put(s.put.Target, s.put.Data, s.put.Mode); err != nil {
				return fmt.Errorf("image %s: file %s: %w", b.rec.Name, s.put.Target, err)
			}
			continue
		}
		st, err := b.exec(s.what, s.argv...)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if st.Success() {
			continue
		}
		if s.hook != nil {
			he := *s.hook
			he.Status = st
			return &he
		}
		return fmt.Errorf("image %s: %s: %s", b.rec.Name, s.what, st)
	}
	return nil
}
