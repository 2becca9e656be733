// Package logging is where goapp's JSON log lines go: access lines (one per request) below error level wait in
// a buffer, every other line is written at once.
//
// In a container, stdout is a pipe to the runtime's log shim, so writing each access line on its own costs a
// system call and a wake-up of the shim per request. Buffered, they go out together at least every
// FlushInterval or whenever BufferSize fills. Lifecycle lines, warnings and errors are written at once, with
// whatever access lines were buffered before them, so the log stays in order and what matters after a crash
// is already out. The price: a process killed without a graceful stop (SIGKILL, OOM) loses at most the last
// FlushInterval of access lines.
package logging

import (
	"context"
	"io"
	"log/slog"
	"time"

	"go.uber.org/zap/zapcore"
)

const (
	// FlushInterval bounds how late an access line reaches the log.
	FlushInterval = 100 * time.Millisecond
	// BufferSize is how many bytes of access lines may wait; at 250 bytes a line that is ~260 requests.
	BufferSize = 64 << 10
)

// Sink is one destination for goapp's log lines.
type Sink struct {
	out *zapcore.BufferedWriteSyncer
	// Logger writes each record at once, after any buffered access lines.
	Logger *slog.Logger
	// Access is for access lines: a line waits in the buffer until the next flush, unless it is an error
	// (a 5xx answer), which is written at once like every other error.
	Access *AccessLog
}

// New makes a sink of JSON lines at level and above on w. Close it to write what is buffered.
func New(w io.Writer, level slog.Leveler) *Sink {
	out := &zapcore.BufferedWriteSyncer{
		WS:            zapcore.AddSync(flushOnly{w}),
		Size:          BufferSize,
		FlushInterval: FlushInterval,
	}
	lines := slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level})
	return &Sink{
		out:    out,
		Logger: slog.New(flushing{Handler: lines, flush: out.Sync}),
		Access: &AccessLog{w: out, level: level, flush: out.Sync, flushFrom: slog.LevelError},
	}
}

// Close writes what is buffered and stops the periodic flush. The sink must not be used afterwards.
func (s *Sink) Close() error {
	return s.out.Stop()
}

// flushOnly hides the writer's Sync method (an *os.File's is fsync), so that a flush is a write, never a
// wait for the disk, and a pipe's EINVAL from fsync is not reported as a failure.
type flushOnly struct{ io.Writer }

// flushing writes each record, then everything buffered.
type flushing struct {
	slog.Handler
	flush func() error
}

func (h flushing) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if ferr := h.flush(); err == nil {
		err = ferr
	}
	return err
}

func (h flushing) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushing{Handler: h.Handler.WithAttrs(attrs), flush: h.flush}
}

func (h flushing) WithGroup(name string) slog.Handler {
	return flushing{Handler: h.Handler.WithGroup(name), flush: h.flush}
}
