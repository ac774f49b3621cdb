package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/stintdev/stint/images"
	"github.com/stintdev/stint/internal/sysexec"
	"github.com/stintdev/stint/runner/state"
	"github.com/stintdev/stint/spec"
)

// recipeVersion changes whenever the way recipes are built changes, so that
// a new stint rebuilds instead of reusing an old image.
const recipeVersion = "1"

// hookDir is where a recipe's hooks are bound inside the build container.
const hookDir = "/.stint-hooks"

// BuildRecipe builds the image an [image.X] with `from` describes, on top of
// its base image: a privileged container of the base (host network, for
// package managers) installs the packages and runs the hooks in order, the
// files are copied in, and the root filesystem is packed and imported as a
// new image. The result is cached by its inputs (base fingerprint, packages,
// hook and file contents, properties): property stint.recipe.
func (r *Runner) BuildRecipe(ctx context.Context, def spec.Image) (*images.Image, error) {
	si, ok := r.Images.(*StoreImages)
	if !ok {
		return nil, fmt.Errorf("image %s: recipes need the local image store", def.Name)
	}
	base, err := r.Images.ResolveImage(ctx, def.From)
	if err != nil {
		return nil, fmt.Errorf("image %s: base %s: %w", def.Name, def.From, err)
	}
	key, err := recipeKey(base.Fingerprint, def)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", def.Name, err)
	}
	if found, err := si.Store.FindProperty("stint.recipe", key); err == nil && len(found) > 0 {
		return found[0], nil
	}

	job := spec.Job{
		Name: "image-" + def.Name, Image: def.From, Privileged: true,
		Network: spec.Network{Mode: NetHost}, User: "root",
	}
	for i, h := range def.Hooks {
		job.Mounts = append(job.Mounts, spec.Mount{Type: spec.MountBind, Source: h, Target: fmt.Sprintf("%s/%02d", hookDir, i), Readonly: true})
	}
	name := ContainerName(job.Name)
	inst, err := r.launch(ctx, job, name, state.KindJob)
	if inst.h != nil {
		defer func() {
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer cancel()
			_ = r.teardown(tctx, inst.h)
		}()
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", def.Name, err)
	}
	var lines []string
	if len(def.Packages) > 0 {
		line, err := installLine(inst.vol.Rootfs, def.Packages)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", def.Name, err)
		}
		lines = append(lines, line)
	}
	for i := range def.Hooks {
		lines = append(lines, fmt.Sprintf("/bin/sh %s/%02d", hookDir, i))
	}
	pw := &prefixWriter{mu: &r.outMu, w: r.Output, prefix: "[image " + def.Name + "] "}
	defer pw.Flush()
	for _, line := range lines {
		st, err := r.Runtime.Exec(ctx, name, ExecOptions{Argv: []string{"/bin/sh", "-c", line}, Env: inst.env, Stdout: pw, Stderr: pw})
		if err != nil {
			return nil, fmt.Errorf("image %s: %s: %w", def.Name, line, err)
		}
		if !st.Success() {
			return nil, fmt.Errorf("image %s: `%s`: %s", def.Name, line, st)
		}
	}
	if err := r.Runtime.Stop(ctx, name); err != nil {
		return nil, fmt.Errorf("image %s: %w", def.Name, err)
	}
	// The bind mounts' mount points are LXC's doing, not the image's.
	if p, err := securejoin.SecureJoin(inst.vol.Rootfs, hookDir); err == nil {
		_ = os.RemoveAll(p)
	}
	if p, err := securejoin.SecureJoin(inst.vol.Rootfs, "/.stint"); err == nil {
		_ = os.RemoveAll(p)
	}
	for _, dst := range sortedKeys(def.Files) {
		if err := copyInto(inst.vol.Rootfs, dst, def.Files[dst]); err != nil {
			return nil, fmt.Errorf("image %s: file %s: %w", def.Name, dst, err)
		}
	}
	props := map[string]string{}
	for k, v := range def.Properties {
		props[k] = v
	}
	props["stint.recipe"] = key
	if props["description"] == "" {
		props["description"] = fmt.Sprintf("%s: recipe on %s", def.Name, def.From)
	}
	img, err := packImport(ctx, si.Store, inst.vol.Rootfs, props)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", def.Name, err)
	}
	return img, nil
}

// recipeKey hashes everything a recipe's result depends on.
func recipeKey(baseFP string, def spec.Image) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "recipe %s\nbase %s\n", recipeVersion, baseFP)
	pk := append([]string(nil), def.Packages...)
	sort.Strings(pk)
	fmt.Fprintf(h, "packages %q\n", pk)
	for _, hook := range def.Hooks {
		b, err := os.ReadFile(hook)
		if err != nil {
			return "", fmt.Errorf("hook: %w", err)
		}
		fmt.Fprintf(h, "hook %d\n", len(b))
		h.Write(b)
	}
	for _, dst := range sortedKeys(def.Files) {
		b, err := os.ReadFile(def.Files[dst])
		if err != nil {
			return "", fmt.Errorf("file %s: %w", dst, err)
		}
		fmt.Fprintf(h, "file %s %d\n", dst, len(b))
		h.Write(b)
	}
	for _, k := range sortedKeys(def.Properties) {
		fmt.Fprintf(h, "property %q=%q\n", k, def.Properties[k])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// installLine is the package manager command for the base image.
func installLine(rootfs string, pkgs []string) (string, error) {
	has := func(p string) bool {
		j, err := securejoin.SecureJoin(rootfs, p)
		if err != nil {
			return false
		}
		_, err = os.Stat(j)
		return err == nil
	}
	for _, p := range pkgs {
		if strings.ContainsAny(p, " \t\n'\"$`;&|<>\\") {
			return "", fmt.Errorf("package name %q", p)
		}
	}
	list := strings.Join(pkgs, " ")
	switch {
	case has("/usr/bin/apt-get"):
		return "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends " + list + " && apt-get clean && rm -rf /var/lib/apt/lists/*", nil
	case has("/sbin/apk"):
		return "apk add --no-cache " + list, nil
	case has("/usr/bin/dnf"):
		return "dnf install -y " + list + " && dnf clean all", nil
	default:
		return "", errors.New("packages: the base image has no package manager stint knows (apt-get, apk, dnf)")
	}
}

// copyInto copies host file src to container path dst under rootfs,
// resolving dst inside rootfs; it is owned by root, mode kept.
func copyInto(rootfs, dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	p, err := securejoin.SecureJoin(rootfs, dst)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".stint-tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// packImport packs rootfs and a metadata.yaml into a unified tarball and
// imports it.
func packImport(ctx context.Context, store *images.Store, rootfs string, props map[string]string) (*images.Image, error) {
	tmp, err := os.MkdirTemp(store.Dir(), ".recipe-")
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	defer os.RemoveAll(tmp)
	meta := images.Metadata{Architecture: images.HostArch(), CreationDate: time.Now().Unix(), Properties: props}
	b, err := meta.Marshal()
	if err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "metadata.yaml"), b, 0o644); err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	tarball := filepath.Join(tmp, "image.tar")
	// rootfs/ prefix for the tree's members and hard links, never for
	// symlink targets.
	if _, err := sysexec.Run(ctx, "tar", "--numeric-owner", "--xattrs", "-cf", tarball,
		"-C", tmp, "metadata.yaml",
		"-C", rootfs, "--transform", `s,^\.,rootfs,rhS`, "."); err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	img, err := store.Import(ctx, []string{tarball}, images.ImportOptions{Properties: props})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return img, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
