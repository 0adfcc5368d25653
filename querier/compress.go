package querier

import (
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
)

// Prometheus's API compresses every answer of its read routes with a new
// gzip (or zlib) writer per request (util/httputil.CompressionHandler): a
// few hundred kilobytes of compressor state allocated and zeroed to send a
// few hundred bytes of label names. On a head of a million series that
// garbage is what a GC cycle makes a label request pay for (assists), and
// it is most of what a label request allocates. pooledCompression gives
// the hot read routes the same answer from pooled writers: the encoding
// chosen by the same rule, the same headers, the same compressed bytes
// (Prometheus's Flush then Close), and the request passed on without
// Accept-Encoding, so that Prometheus's own handler leaves the body alone.

// compressedRoutes are the routes whose answers are compressed here: the
// read routes, all of which Prometheus compresses. Every other route keeps
// Prometheus's own handling (some of them stream, or are not compressed).
var compressedRoutes = map[string]bool{
	"/query": true, "/query_range": true, "/series": true, "/labels": true, "/label/:name/values": true,
}

var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}
	zlibWriters = sync.Pool{New: func() any { return zlib.NewWriter(io.Discard) }}
)

// pooledCompression wraps the handler of route name, when it is one of
// compressedRoutes.
func pooledCompression(name string, next http.HandlerFunc) http.HandlerFunc {
	if !compressedRoutes[name] {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		enc := acceptedEncoding(r.Header.Get("Accept-Encoding"))
		if enc == "" {
			next(w, r)
			return
		}
		plain := *r
		plain.Header = r.Header.Clone()
		plain.Header.Del("Accept-Encoding")
		w.Header().Set("Content-Encoding", enc)
		cw := &compressingWriter{ResponseWriter: w}
		if enc == "gzip" {
			gw := gzipWriters.Get().(*gzip.Writer)
			gw.Reset(w)
			defer func() { gw.Reset(io.Discard); gzipWriters.Put(gw) }() // Holds no response.
			cw.w, cw.flush = gw, gw.Flush
		} else {
			zw := zlibWriters.Get().(*zlib.Writer)
			zw.Reset(w)
			defer func() { zw.Reset(io.Discard); zlibWriters.Put(zw) }()
			cw.w, cw.flush = zw, zw.Flush
		}
		next(cw, &plain)
		cw.Header().Del("Content-Length")
		_ = cw.flush()
		_ = cw.w.Close()
	}
}

// acceptedEncoding is the encoding Prometheus's handler picks for the
// Accept-Encoding header h: the first of gzip and deflate listed, quality
// values not read; "" for none.
func acceptedEncoding(h string) string {
	for part := range strings.SplitSeq(h, ",") {
		switch strings.TrimSpace(part) {
		case "gzip":
			return "gzip"
		case "deflate":
			return "deflate"
		}
	}
	return ""
}

// compressingWriter writes the body through w, and drops any
// Content-Length, which would be the uncompressed one.
type compressingWriter struct {
	http.ResponseWriter
	w     io.WriteCloser
	flush func() error
}

func (c *compressingWriter) Write(p []byte) (int, error) {
	c.Header().Del("Content-Length")
	return c.w.Write(p)
}

func (c *compressingWriter) WriteHeader(code int) {
	c.Header().Del("Content-Length")
	c.ResponseWriter.WriteHeader(code)
}
