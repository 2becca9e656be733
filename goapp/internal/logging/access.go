package logging

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// RequestIDKey names the request id in the access line and in every other line about a request, so that one
// query finds all of a request's lines.
const RequestIDKey = "request_id"

// Request is one answered request, as its access line records it.
type Request struct {
	Time     time.Time // when the answer was complete
	ID       string    // the request id (X-Request-ID)
	Method   string
	Route    string // the route template, e.g. /notes/:name
	Path     string // the path as the client sent it
	Status   int
	Latency  time.Duration
	Bytes    int // response body bytes
	ClientIP string
}

// AccessLog writes one JSON line per request. The line has the shape slog's JSON handler gives every other line
// (time, level, msg, then the fields of Request), but it is appended field by field: a fixed schema needs no
// generic walk over attributes, and through slog the line took about 40 % of goapp's in-process time for /hello
// (see BenchmarkAccessLine).
type AccessLog struct {
	w     io.Writer
	level slog.Leveler
	// flush, when set, is called after each line at flushFrom or above.
	flush     func() error
	flushFrom slog.Level

	mu sync.Mutex // one Write per line, in order, whatever w is
}

// NewAccessLog writes access lines at level and above straight to w.
func NewAccessLog(w io.Writer, level slog.Leveler) *AccessLog {
	return &AccessLog{w: w, level: level}
}

// Enabled tells whether a line at level would be written; callers skip gathering the fields otherwise.
func (a *AccessLog) Enabled(level slog.Level) bool {
	return level >= a.level.Level()
}

// Write writes r's line at level, if enabled.
func (a *AccessLog) Write(level slog.Level, r Request) error {
	if !a.Enabled(level) {
		return nil
	}
	bufp := linePool.Get().(*[]byte)
	line := AppendLine((*bufp)[:0], level, r)
	a.mu.Lock()
	_, err := a.w.Write(line)
	a.mu.Unlock()
	if a.flush != nil && level >= a.flushFrom {
		if ferr := a.flush(); err == nil {
			err = ferr
		}
	}
	// A line for a very long path is not worth keeping a large buffer around for.
	if cap(line) <= maxPooledLine {
		*bufp = line
		linePool.Put(bufp)
	}
	return err
}

const maxPooledLine = 4 << 10

var linePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// AppendLine appends r's access line at level, newline included, to dst. Strings are quoted by jsontext (the
// reference implementation of encoding/json/v2): bytes that are not valid UTF-8 become U+FFFD, as slog does.
func AppendLine(dst []byte, level slog.Level, r Request) []byte {
	dst = append(dst, `{"time":"`...)
	dst = r.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","level":`...)
	dst = appendString(dst, level.String())
	dst = append(dst, `,"msg":"request","`+RequestIDKey+`":`...)
	dst = appendString(dst, r.ID)
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, r.Method)
	dst = append(dst, `,"route":`...)
	dst = appendString(dst, r.Route)
	dst = append(dst, `,"path":`...)
	dst = appendString(dst, r.Path)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	// Whole nanoseconds: an integer is exact and cheaper to write than seconds as a float.
	dst = append(dst, `,"latency_ns":`...)
	dst = strconv.AppendInt(dst, r.Latency.Nanoseconds(), 10)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, int64(r.Bytes), 10)
	dst = append(dst, `,"client_ip":`...)
	dst = appendString(dst, r.ClientIP)
	return append(dst, "}\n"...)
}

// appendString quotes s exactly as jsontext.AppendQuote does. An access line's strings (request id, method,
// route, path, address) are nearly always printable ASCII with nothing to escape; those are checked against a
// table and copied between quotes. jsontext's rune-by-rune walk took ~1,360 of goapp's ~52,000 instructions per
// /hello, this ~730 (bench/callgrind.py). Anything else goes to jsontext. It reports invalid UTF-8 as an error
// after writing it as U+FFFD; for a log line that replacement is the wanted result, so the error is not one.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainASCII[s[i]] {
			dst, _ = jsontext.AppendQuote(dst, s)
			return dst
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// plainASCII marks the bytes that JSON writes as themselves: printable ASCII but the quote and the backslash.
var plainASCII = func() (plain [256]bool) {
	for c := ' '; c <= '~'; c++ {
		plain[c] = c != '"' && c != '\\'
	}
	return plain
}()
