package runner

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A line that never ends (head -c 300M /dev/zero | tr '\0' a) goes out in
// pieces: the pending buffer never grows past maxPending, and no byte is
// lost.
func TestPrefixWriterBounded(t *testing.T) {
	for _, chunk := range []int{4096, 64<<10 + 7, 1 << 20, 10 << 20} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			var out bytes.Buffer
			p := &prefixWriter{mu: &sync.Mutex{}, w: &out, prefix: "[j] "}
			const total = 10 << 20
			data := bytes.Repeat([]byte{'a'}, chunk)
			for written := 0; written < total; {
				n := min(len(data), total-written)
				m, err := p.Write(data[:n])
				require.NoError(t, err)
				require.Equal(t, n, m)
				written += n
				require.LessOrEqual(t, len(p.buf), maxPending, "pending bytes after %d", written)
				require.LessOrEqual(t, cap(p.buf), maxPending, "buffer capacity after %d", written)
			}
			p.Flush()
			lines := strings.SplitAfter(out.String(), "\n")
			require.Equal(t, "", lines[len(lines)-1])
			lines = lines[:len(lines)-1]
			got := 0
			for _, l := range lines {
				require.True(t, strings.HasPrefix(l, "[j] "), "every piece is prefixed")
				body := strings.TrimSuffix(strings.TrimPrefix(l, "[j] "), "\n")
				require.LessOrEqual(t, len(body), maxPending)
				require.Equal(t, strings.Repeat("a", len(body)), body)
				got += len(body)
			}
			assert.Equal(t, total, got, "every byte passed on")
			assert.Equal(t, (total+maxPending-1)/maxPending, len(lines))
		})
	}
}

// '\r' ends a line for the terminal (progress bars stream), a "\r\n" is
// one line end even split across writes, and '\n' still works.
func TestPrefixWriterLineEnds(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"newlines", []string{"one\ntwo\n"}, "[j] one\n[j] two\n"},
		{"split line", []string{"on", "e\ntw", "o\n"}, "[j] one\n[j] two\n"},
		{"progress", []string{"10%\r", "50%\r", "100%\n"}, "[j] 10%\n[j] 50%\n[j] 100%\n"},
		{"progress in one write", []string{"10%\r50%\rdone\n"}, "[j] 10%\n[j] 50%\n[j] done\n"},
		{"crlf", []string{"a\r\nb\r\n"}, "[j] a\n[j] b\n"},
		{"crlf split across writes", []string{"a\r", "\nb\r", "\n"}, "[j] a\n[j] b\n"},
		{"empty lines kept", []string{"\n\r\n\n"}, "[j] \n[j] \n[j] \n"},
		{"partial last line flushed", []string{"x\rtail"}, "[j] x\n[j] tail\n"},
		{"line of exactly the cap", []string{strings.Repeat("b", maxPending) + "\nc\n"}, "[j] " + strings.Repeat("b", maxPending) + "\n[j] c\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &prefixWriter{mu: &sync.Mutex{}, w: &out, prefix: "[j] "}
			for _, w := range tt.writes {
				n, err := p.Write([]byte(w))
				require.NoError(t, err)
				require.Equal(t, len(w), n)
			}
			p.Flush()
			assert.Equal(t, tt.want, out.String())
		})
	}
}
