package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

// A typical access line's fields.
var benchRequest = Request{
	ID: "2SZLQGW3QHE7ZMMHRCTJMEV4BB", Method: "GET", Route: "/hello", Path: "/hello", Status: 200,
	Latency: 41235 * time.Nanosecond, Bytes: 29, ClientIP: "10.0.3.17",
}

// slogLine writes r's line as goapp did before AccessLog: a record through slog's JSON handler.
func slogLine(h slog.Handler, level slog.Level, r Request) error {
	record := slog.NewRecord(r.Time, level, "request", 0)
	record.AddAttrs(
		slog.String(RequestIDKey, r.ID),
		slog.String("method", r.Method),
		slog.String("route", r.Route),
		slog.String("path", r.Path),
		slog.Int("status", r.Status),
		slog.Int64("latency_ns", r.Latency.Nanoseconds()),
		slog.Int("bytes", r.Bytes),
		slog.String("client_ip", r.ClientIP),
	)
	return h.Handle(context.Background(), record)
}

// BenchmarkAccessLine writes goapp's access line to a pipe drained by another goroutine, as stdout is in a
// container (the runtime's log shim reads the other end): through slog's JSON handler written at once
// ("slog-direct", goapp's first way), through slog's JSON handler into the sink's buffer ("slog-buffered", the
// second) and through AccessLog into the sink's buffer ("access-buffered", now).
func BenchmarkAccessLine(b *testing.B) {
	for _, tt := range []struct {
		name  string
		write func(w io.Writer) (func(Request) error, func() error)
	}{
		{"slog-direct", func(w io.Writer) (func(Request) error, func() error) {
			h := slog.NewJSONHandler(w, nil)
			return func(r Request) error { return slogLine(h, slog.LevelInfo, r) }, func() error { return nil }
		}},
		{"slog-buffered", func(w io.Writer) (func(Request) error, func() error) {
			out := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(flushOnly{w}), Size: BufferSize, FlushInterval: FlushInterval}
			h := slog.NewJSONHandler(out, nil)
			return func(r Request) error { return slogLine(h, slog.LevelInfo, r) }, out.Stop
		}},
		{"access-buffered", func(w io.Writer) (func(Request) error, func() error) {
			s := New(w, slog.LevelInfo)
			return func(r Request) error { return s.Access.Write(slog.LevelInfo, r) }, s.Close
		}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			r, w, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				_, _ = io.Copy(io.Discard, r)
			}()
			write, closeLog := tt.write(w)
			req := benchRequest
			b.ReportAllocs()
			for b.Loop() {
				req.Time = time.Now()
				if err := write(req); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := closeLog(); err != nil {
				b.Fatal(err)
			}
			_ = w.Close()
			<-drained
			_ = r.Close()
		})
	}
}
