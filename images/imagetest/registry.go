package imagetest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stintdev/stint/internal/testenv"
	"github.com/stretchr/testify/require"
)

// Registry is a CNCF distribution server (Debian's docker-registry) that a
// test started on 127.0.0.1, with its storage in a temporary directory.
type Registry struct {
	Addr    string // 127.0.0.1:PORT
	Storage string
}

// StartRegistry starts a registry for the test and stops it at its end;
// without docker-registry and skopeo the test skips (fails under
// STINT_INTEGRATION=1).
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	testenv.RequiresTool(t, "docker-registry", "skopeo")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	r := &Registry{Addr: addr, Storage: filepath.Join(dir, "storage")}
	conf := filepath.Join(dir, "config.yml")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"+
		"storage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", r.Storage, addr), 0o644))
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
				return r
			}
		}
		if i == 100 {
			testenv.Unavailable(t, fmt.Sprintf("docker-registry did not answer on %s: %v\n%s", addr, err, out.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Push copies the layout's tag into the registry as repo (REPO:TAG) with
// skopeo.
func (r *Registry) Push(t testing.TB, layoutDir, tag, repo string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "skopeo", "copy", "--all", "--dest-tls-verify=false",
		"oci:"+layoutDir+":"+tag, "docker://"+r.Addr+"/"+repo)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "skopeo copy: %s", out)
}

// BlobFile is the registry's file of a blob.
func (r *Registry) BlobFile(h v1.Hash) string {
	return filepath.Join(r.Storage, "docker/registry/v2/blobs", h.Algorithm, h.Hex[:2], h.Hex, "data")
}
