package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stintdev/stint/internal/testenv"
	"github.com/stintdev/stint/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ociEntry is one tar entry of a test layer: a directory (name ends in
// '/'), a symlink, or a file.
type ociEntry struct {
	name, body, symlink string
	mode                int64
}

func ociTar(t *testing.T, ents []ociEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0)}
		switch {
		case e.symlink != "":
			h.Typeflag, h.Linkname, h.Size, h.Mode = tar.TypeSymlink, e.symlink, 0, 0o777
		case e.name[len(e.name)-1] == '/':
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		if e.mode != 0 {
			h.Mode = e.mode
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(e.body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// ociLayout writes an OCI layout in dir with one linux/amd64 image of the
// given layers, tagged tag.
func ociLayout(t *testing.T, dir, tag string, layers ...[]ociEntry) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "blobs/sha256"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644))
	blob := func(mt string, data []byte) map[string]any {
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		require.NoError(t, os.WriteFile(filepath.Join(dir, "blobs/sha256", h), data, 0o644))
		return map[string]any{"mediaType": mt, "digest": "sha256:" + h, "size": len(data)}
	}
	asJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return b
	}
	var descs, diffIDs []any
	for _, ents := range layers {
		raw := ociTar(t, ents)
		sum := sha256.Sum256(raw)
		diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(sum[:]))
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		_, err := w.Write(raw)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		descs = append(descs, blob("application/vnd.oci.image.layer.v1.tar+gzip", gz.Bytes()))
	}
	cfg := blob("application/vnd.oci.image.config.v1+json", asJSON(map[string]any{
		"architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
		"config": map[string]any{"Env": []string{"PATH=/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	}))
	m := blob("application/vnd.oci.image.manifest.v1+json", asJSON(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": descs,
	}))
	m["annotations"] = map[string]string{"org.opencontainers.image.ref.name": tag}
	m["platform"] = map[string]string{"os": "linux", "architecture": "amd64"}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.json"), asJSON(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{m},
	}), 0o644))
}

// startOCIRegistry starts Debian's docker-registry (the CNCF distribution
// server) on 127.0.0.1 with its storage in a temporary directory.
func startOCIRegistry(t *testing.T) string {
	t.Helper()
	testenv.RequiresTool(t, "docker-registry", "skopeo")
	addr, dir := freeAddr(t), t.TempDir()
	conf := filepath.Join(dir, "config.yml")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"+
		"storage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "storage"), addr), 0o644))
	cmd := exec.Command("docker-registry", "serve", conf)
	var out testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("docker-registry output:\n%s", out.String())
		}
	})
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if i == 100 {
			testenv.Unavailable(t, fmt.Sprintf("docker-registry did not answer on %s: %v\n%s", addr, err, out.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRunOCIFromRegistry: a two-layer image pushed with skopeo to a
// registry on loopback, named in a spec as hub:test/two:v1 (an oci remote),
// runs a job: the upper layer's whiteout deleted a file, its opaque
// directory hid the lower one's entries, its new file is there. The same
// image from the local layout (oci-layout:DIR:v1) is stored once.
func TestRunOCIFromRegistry(t *testing.T) {
	f := newCLI(t)
	addr := startOCIRegistry(t)
	bb, err := os.ReadFile("/bin/busybox")
	require.NoError(t, err)
	lay := filepath.Join(f.dir, "layout")
	ociLayout(t, lay, "v1", []ociEntry{
		{name: "bin/"}, {name: "bin/busybox", body: string(bb), mode: 0o755}, {name: "bin/sh", symlink: "busybox"},
		{name: "etc/"}, {name: "etc/victim", body: "deleted above"},
		{name: "opt/"}, {name: "opt/dir/"}, {name: "opt/dir/old", body: "hidden above"},
	}, []ociEntry{
		{name: "etc/"}, {name: "etc/.wh.victim"},
		{name: "opt/"}, {name: "opt/dir/"}, {name: "opt/dir/.wh..wh..opq"}, {name: "opt/dir/new", body: "upper"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "skopeo", "copy", "--dest-tls-verify=false",
		"oci:"+lay+":v1", "docker://"+addr+"/test/two:v1").CombinedOutput()
	require.NoError(t, err, "skopeo copy: %s", out)

	addRemote(t, f.root, "hub", "http://"+addr, remote.ProtocolOCI)
	p := f.spec(t, `
[job.oci]
image = "hub:test/two:v1"
run = ["test ! -e /etc/victim", "test ! -e /opt/dir/old", "echo upper-is-$(/bin/busybox cat /opt/dir/new)"]
`)
	got, code := f.run(t, "run", p)
	require.Equal(t, 0, code, got)
	assert.Contains(t, got, "upper-is-upper")
	got, code = f.run(t, "image", "list")
	require.Equal(t, 0, code, got)
	assert.Contains(t, got, "hub:test/two:v1@sha256:")

	got, code = f.run(t, "image", "pull", "oci-layout:"+lay+":v1", "--alias", "two")
	require.Equal(t, 0, code, got)
	got, code = f.run(t, "--json", "image", "list")
	require.Equal(t, 0, code, got)
	var imgs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(got), &imgs))
	assert.Len(t, imgs, 1, "the same manifest digest is one image: %s", got)
	f.assertClean(t)
}
