package logging

import (
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// output records what reached the writer, one entry per Write call.
type output struct {
	mu     sync.Mutex
	writes []string
	synced int
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes = append(o.writes, string(p))
	return len(p), nil
}

// Sync is what an *os.File would offer (fsync); the sink must never call it.
func (o *output) Sync() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.synced++
	return errors.New("fsync: invalid argument")
}

func (o *output) text() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.writes, "")
}

// messages names each line written so far: its msg, or an access line's path.
func (o *output) messages(t *testing.T) []string {
	t.Helper()
	var msgs []string
	for _, line := range strings.Split(strings.TrimSuffix(o.text(), "\n"), "\n") {
		if line == "" {
			continue
		}
		var e struct{ Msg, Path string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		if e.Msg == "request" {
			e.Msg = e.Path // an access line: its path names it
		}
		msgs = append(msgs, e.Msg)
	}
	return msgs
}

// access writes an access line at level whose path is name; paths tells the lines apart.
func access(t *testing.T, s *Sink, level slog.Level, name string) {
	t.Helper()
	if err := s.Access.Write(level, Request{Time: time.Now(), Method: "GET", Path: name, Status: 200}); err != nil {
		t.Fatal(err)
	}
}

func TestAccessLinesWaitForTheNextLine(t *testing.T) {
	out := &output{}
	s := New(out, slog.LevelInfo)
	defer s.Close()

	access(t, s, slog.LevelInfo, "a1")
	access(t, s, slog.LevelInfo, "a2")
	if got := out.text(); got != "" {
		t.Fatalf("access lines were written before any flush: %q", got)
	}
	s.Logger.Info("listening")
	if got, want := out.messages(t), []string{"a1", "a2", "listening"}; !slices.Equal(got, want) {
		t.Fatalf("written %v; want %v (buffered lines first, in order)", got, want)
	}
	// One write for the three lines: that is the point of the buffer.
	if len(out.writes) != 1 {
		t.Errorf("%d writes; want 1", len(out.writes))
	}
	if out.synced != 0 {
		t.Errorf("the writer's Sync (fsync) was called %d times; want never", out.synced)
	}
}

// A 5xx access line is an error: it is written at once, with the access lines buffered before it.
func TestAnErrorAccessLineIsWrittenAtOnce(t *testing.T) {
	out := &output{}
	s := New(out, slog.LevelInfo)
	defer s.Close()

	access(t, s, slog.LevelInfo, "a1")
	access(t, s, slog.LevelError, "a500")
	if got, want := out.messages(t), []string{"a1", "a500"}; !slices.Equal(got, want) {
		t.Fatalf("written %v; want %v at once, in order", got, want)
	}
	access(t, s, slog.LevelWarn, "a4xx")
	if got, want := out.messages(t), []string{"a1", "a500"}; !slices.Equal(got, want) {
		t.Fatalf("written %v; want a line below error level to wait", got)
	}
}

func TestAccessLinesAreFlushedWithinTheInterval(t *testing.T) {
	out := &output{}
	s := New(out, slog.LevelInfo)
	defer s.Close()

	access(t, s, slog.LevelInfo, "a1")
	deadline := time.Now().Add(20 * FlushInterval)
	for out.text() == "" {
		if time.Now().After(deadline) {
			t.Fatalf("an access line was not written within %s", 20*FlushInterval)
		}
		time.Sleep(FlushInterval / 10)
	}
	if got := out.messages(t); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("written %v; want [a1]", got)
	}
}

func TestCloseWritesWhatIsBuffered(t *testing.T) {
	out := &output{}
	s := New(out, slog.LevelInfo)
	access(t, s, slog.LevelInfo, "a1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.messages(t); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("after Close written %v; want [a1]", got)
	}
	// goleak (TestMain) checks that Close also stopped the flushing goroutine.
}

func TestFullBufferIsWrittenWithoutSplittingALine(t *testing.T) {
	out := &output{}
	s := New(out, slog.LevelInfo)
	defer s.Close()

	long := strings.Repeat("x", 1000)
	n := 2 * BufferSize / len(long)
	for range n {
		access(t, s, slog.LevelInfo, long)
	}
	if out.text() == "" {
		t.Fatalf("%d bytes of access lines buffered; want the buffer (%d bytes) written when full", n*len(long), BufferSize)
	}
	for i, w := range out.writes {
		if !strings.HasSuffix(w, "\n") {
			t.Fatalf("write %d ends inside a line: ...%q", i, w[max(0, len(w)-40):])
		}
	}
}

func TestLevelAndAttrs(t *testing.T) {
	out := &output{}
	s := New(out, slog.LevelWarn)
	defer s.Close()

	s.Logger.Info("dropped")
	if s.Access.Enabled(slog.LevelInfo) || !s.Access.Enabled(slog.LevelWarn) {
		t.Error("access log: want disabled at info and enabled at warn with level warn")
	}
	access(t, s, slog.LevelInfo, "dropped")
	// A logger derived with attributes still writes at once.
	s.Logger.With("component", "store").Warn("slow disk")
	s.Logger.WithGroup("g").Error("failed", "k", "v")
	text := out.text()
	if strings.Contains(text, "dropped") {
		t.Errorf("an info line was written at level warn: %q", text)
	}
	for _, want := range []string{`"msg":"slow disk","component":"store"`, `"msg":"failed","g":{"k":"v"}`} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %s (written at once): %q", want, text)
		}
	}
}
