package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// slogReference is the line slog's JSON handler writes for r: what every other goapp line looks like, and what
// an access line must decode to.
func slogReference(t testing.TB, level slog.Level, r Request) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := slogLine(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), level, r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decode(t testing.TB, line []byte) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not a JSON line: %q: %v", line, err)
	}
	return v
}

// sameAsSlog fails unless AppendLine's line is one JSON object ending in a newline that decodes to what slog's
// line decodes to.
func sameAsSlog(t testing.TB, level slog.Level, r Request) {
	t.Helper()
	got := AppendLine(nil, level, r)
	if !bytes.HasSuffix(got, []byte("}\n")) || bytes.Count(got, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", got)
	}
	want := slogReference(t, level, r)
	if g, w := decode(t, got), decode(t, want); !reflect.DeepEqual(g, w) {
		t.Fatalf("line %s\ndecodes to %v;\nslog's %s\ndecodes to %v", got, g, want, w)
	}
}

func TestAccessLineDecodesLikeSlogs(t *testing.T) {
	at := time.Date(2026, 12, 4, 6, 5, 4, 321000000, time.UTC)
	for _, tt := range []struct {
		name  string
		level slog.Level
		r     Request
	}{
		{"typical", slog.LevelInfo, Request{Time: at, ID: "2SZLQGW3QHE7ZMMHRCTJMEV4BB", Method: "GET",
			Route: "/notes/:name", Path: "/notes/a", Status: 200, Latency: 41235, Bytes: 29, ClientIP: "10.0.3.17"}},
		{"probe at debug", slog.LevelDebug, Request{Time: at, Route: "/healthz", Path: "/healthz", Status: 200}},
		{"5xx at error", slog.LevelError, Request{Time: at, Status: 503, Latency: time.Hour}},
		{"quotes, controls and escapes", slog.LevelInfo, Request{Time: at, Path: "/a\"b\\c\n\r\t\x00\x1f\x7f<>&"}},
		{"invalid UTF-8 and line separators", slog.LevelInfo, Request{Time: at, Path: "/\xff\xfe\u2028\u2029é😀"}},
		{"method token and IPv6", slog.LevelWarn, Request{Time: at, Method: "M-SEARCH", ClientIP: "2001:db8::1"}},
		{"non-UTC time", slog.LevelInfo, Request{Time: at.In(time.FixedZone("X", -3*3600)), Bytes: 1 << 40}},
	} {
		t.Run(tt.name, func(t *testing.T) { sameAsSlog(t, tt.level, tt.r) })
	}
}

// On ordinary values the line is slog's byte for byte, so the two kinds of lines read alike in a terminal too.
func TestTypicalAccessLineIsSlogsByteForByte(t *testing.T) {
	r := benchRequest
	r.Time = time.Now()
	if got, want := AppendLine(nil, slog.LevelInfo, r), slogReference(t, slog.LevelInfo, r); !bytes.Equal(got, want) {
		t.Fatalf("line\n%s; slog's\n%s", got, want)
	}
}

func TestAppendLineAppendsToDst(t *testing.T) {
	got := AppendLine([]byte("prefix "), slog.LevelInfo, Request{Path: "/p"})
	if !strings.HasPrefix(string(got), `prefix {"time":`) || !strings.Contains(string(got), `"path":"/p"`) {
		t.Fatalf("AppendLine = %q", got)
	}
}

func TestAccessLogWritesEnabledLinesWhole(t *testing.T) {
	var out bytes.Buffer
	a := NewAccessLog(&out, slog.LevelInfo)
	if err := a.Write(slog.LevelDebug, Request{Path: "/healthz"}); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Fatalf("a debug line was written at level info: %q", out.String())
	}
	long := Request{Time: time.Now(), Path: "/" + strings.Repeat("x", 2*maxPooledLine)}
	for _, r := range []Request{{Time: time.Now(), Path: "/a"}, long, {Time: time.Now(), Path: "/b"}} {
		if err := a.Write(slog.LevelInfo, r); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines; want 3: %q", len(lines), out.String())
	}
	for i, want := range []string{"/a", long.Path, "/b"} {
		if got := decode(t, []byte(lines[i]))["path"]; got != want {
			t.Errorf("line %d path = %.40q; want %.40q", i, got, want)
		}
	}
}

// appendString's shortcut for plain ASCII must not change a byte of jsontext's quoting.
func quotesLikeJSONText(t testing.TB, s string) {
	t.Helper()
	want, _ := jsontext.AppendQuote([]byte("x"), s)
	if got := appendString([]byte("x"), s); !bytes.Equal(got, want) {
		t.Fatalf("appendString(%q) = %q; jsontext.AppendQuote gives %q", s, got, want)
	}
}

func TestStringsAreQuotedLikeJSONText(t *testing.T) {
	for b := range 256 {
		quotesLikeJSONText(t, "a"+string([]byte{byte(b)})+"z")
	}
	for _, s := range []string{"", "2SZLQGW3QHE7ZMMHRCTJMEV4BB", "/notes/:name", " ~", "a\"b", `\`, "\u2028", "é", "\xff"} {
		quotesLikeJSONText(t, s)
	}
}

func FuzzAccessLine(f *testing.F) {
	f.Add("2SZLQGW3QHE7ZMMHRCTJMEV4BB", "GET", "/notes/:name", "/notes/a", 200, int64(41235), 29, "10.0.3.17")
	f.Add("", "PUT", "unmatched", "/a\"b\\\n\x00\xff\u2028", 599, int64(-1), -5, "::1")
	f.Fuzz(func(t *testing.T, id, method, route, path string, status int, latency int64, size int, ip string) {
		for _, s := range []string{id, method, route, path, ip} {
			quotesLikeJSONText(t, s)
		}
		sameAsSlog(t, slog.LevelInfo, Request{Time: time.Unix(0, latency).UTC(), ID: id, Method: method, Route: route,
			Path: path, Status: status, Latency: time.Duration(latency), Bytes: size, ClientIP: ip})
	})
}
