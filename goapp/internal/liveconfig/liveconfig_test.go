package liveconfig

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"goapp/internal/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    map[string]string
		wantErr string
	}{
		{name: "empty", data: "", want: map[string]string{}},
		{name: "both keys, comments, blank lines, CRLF",
			data: "# live settings\r\n\r\nAPP_MESSAGE=  Hello = world  \r\n  LOG_LEVEL = debug\n",
			want: map[string]string{"APP_MESSAGE": "  Hello = world  ", "LOG_LEVEL": " debug"}},
		{name: "empty value", data: "APP_MESSAGE=", want: map[string]string{"APP_MESSAGE": ""}},
		{name: "unknown key", data: "APP_MESSAGE=x\nPORT=9090\n",
			wantErr: `line 2: unknown key "PORT": want one of APP_MESSAGE, LOG_LEVEL`},
		{name: "no equals sign", data: "LOG_LEVEL debug", wantErr: `line 1: want NAME=value, got "LOG_LEVEL debug"`},
		{name: "twice", data: "LOG_LEVEL=info\nLOG_LEVEL=debug", wantErr: "line 2: LOG_LEVEL is set twice"},
		{name: "NUL", data: "APP_MESSAGE=a\x00b", wantErr: "line 1: APP_MESSAGE contains a NUL byte"},
		{name: "carriage return inside", data: "APP_MESSAGE=a\r\r\n", wantErr: "line 1: APP_MESSAGE contains a NUL byte or a carriage return"},
		{name: "not UTF-8", data: "APP_MESSAGE=\xff", wantErr: "not UTF-8"},
		{name: "too large", data: "APP_MESSAGE=" + strings.Repeat("x", MaxFileBytes), wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Fatalf("Parse = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	// Every problem at once, one line each.
	_, err := Parse([]byte("A=1\nB\nLOG_LEVEL=x\nLOG_LEVEL=y"))
	if err == nil || len(strings.Split(err.Error(), "\n")) != 3 {
		t.Fatalf("Parse = %v; want three lines", err)
	}
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOverlaysTheEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.env")
	environment := env(map[string]string{"APP_MESSAGE": "from env", "LOG_LEVEL": "warn"})
	s := New(path, environment)

	if _, err := s.Load(); err == nil || !strings.Contains(err.Error(), "CONFIG_FILE "+path) {
		t.Fatalf("Load of a missing file = %v; want an error naming CONFIG_FILE and the path", err)
	}
	writeFile(t, path, "APP_MESSAGE=from file\n")
	if live, err := s.Load(); err != nil || live != (config.Live{Message: "from file", LogLevel: slog.LevelWarn}) {
		t.Fatalf("Load = %+v, %v; want the file's message and the environment's level", live, err)
	}
	writeFile(t, path, "LOG_LEVEL=loud\nCOLOR=red\n")
	_, err := s.Load()
	want := "CONFIG_FILE " + path + `: line 2: unknown key "COLOR": want one of APP_MESSAGE, LOG_LEVEL`
	if err == nil || err.Error() != want {
		t.Fatalf("Load = %v; want %q", err, want)
	}
	writeFile(t, path, "LOG_LEVEL=loud\n")
	want = "CONFIG_FILE " + path + `: invalid LOG_LEVEL="loud": want one of debug, info, warn, error`
	if _, err := s.Load(); err == nil || err.Error() != want {
		t.Fatalf("Load = %v; want %q", err, want)
	}
}

// kubeletVolume lays out a directory the way the kubelet's atomic writer does for a ConfigMap volume:
// dir/live.env -> ..data/live.env, ..data -> ..<version>/, and swaps versions the same way.
type kubeletVolume struct {
	t       *testing.T
	dir     string
	version int
}

func newKubeletVolume(t *testing.T, content string) *kubeletVolume {
	v := &kubeletVolume{t: t, dir: t.TempDir()}
	v.update(content)
	if err := os.Symlink(filepath.Join("..data", "live.env"), filepath.Join(v.dir, "live.env")); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *kubeletVolume) path() string { return filepath.Join(v.dir, "live.env") }

func (v *kubeletVolume) update(content string) {
	v.t.Helper()
	v.version++
	version := fmt.Sprintf("..2026_12_04_10_00_%02d.%d", v.version, v.version)
	if err := os.Mkdir(filepath.Join(v.dir, version), 0o755); err != nil {
		v.t.Fatal(err)
	}
	writeFile(v.t, filepath.Join(v.dir, version, "live.env"), content)
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		v.t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, old)); err != nil {
			v.t.Fatal(err)
		}
	}
}

type change struct {
	live config.Live
	err  error
}

func watch(t *testing.T, s *Source) <-chan change {
	t.Helper()
	changes := make(chan change, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, func(l config.Live, err error) { changes <- change{l, err} }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch = %v", err)
		}
	})
	return changes
}

func next(t *testing.T, changes <-chan change) change {
	t.Helper()
	select {
	case c := <-changes:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported within 10 s")
		return change{}
	}
}

func quiet(t *testing.T, changes <-chan change, d time.Duration) {
	t.Helper()
	select {
	case c := <-changes:
		t.Fatalf("unexpected change reported: %+v", c)
	case <-time.After(d):
	}
}

func TestWatchFollowsTheKubeletsSymlinkSwap(t *testing.T) {
	vol := newKubeletVolume(t, "APP_MESSAGE=first\n")
	s := New(vol.path(), env(nil))
	if live, err := s.Load(); err != nil || live.Message != "first" {
		t.Fatalf("Load = %+v, %v", live, err)
	}
	changes := watch(t, s)

	vol.update("APP_MESSAGE=second\nLOG_LEVEL=debug\n")
	if c := next(t, changes); c.err != nil || c.live != (config.Live{Message: "second", LogLevel: slog.LevelDebug}) {
		t.Fatalf("after the swap: %+v; want the second version", c)
	}

	vol.update("APP_MESSAGE=third\nLOG_LEVEL=verbose\n")
	if c := next(t, changes); c.err == nil || !strings.Contains(c.err.Error(), `invalid LOG_LEVEL="verbose"`) {
		t.Fatalf("after an invalid swap: %+v; want the LOG_LEVEL error", c)
	}
	// The same invalid content again (a new version directory, same bytes) is not reported twice.
	vol.update("APP_MESSAGE=third\nLOG_LEVEL=verbose\n")
	quiet(t, changes, 500*time.Millisecond)

	vol.update("APP_MESSAGE=fourth\n")
	if c := next(t, changes); c.err != nil || c.live != (config.Live{Message: "fourth", LogLevel: slog.LevelInfo}) {
		t.Fatalf("after the fix: %+v; want the fourth version with the default level", c)
	}
}

func TestWatchFollowsPlainEditsAndRemoval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.env")
	writeFile(t, path, "APP_MESSAGE=one\n")
	s := New(path, env(map[string]string{"APP_MESSAGE": "env"}))
	if _, err := s.Load(); err != nil {
		t.Fatal(err)
	}
	changes := watch(t, s)

	// An editor's save: a new file renamed over the old one.
	writeFile(t, path+".swp", "APP_MESSAGE=two\n")
	if err := os.Rename(path+".swp", path); err != nil {
		t.Fatal(err)
	}
	if c := next(t, changes); c.err != nil || c.live.Message != "two" {
		t.Fatalf("after a rename: %+v; want two", c)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if c := next(t, changes); c.err == nil || !strings.Contains(c.err.Error(), "no such file") {
		t.Fatalf("after removal: %+v; want a read error (the caller keeps its settings)", c)
	}
	writeFile(t, path, "")
	if c := next(t, changes); c.err != nil || c.live.Message != "env" {
		t.Fatalf("after an empty file: %+v; want the environment's message", c)
	}
}

func TestWatchRereadsWithoutEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.env")
	writeFile(t, path, "APP_MESSAGE=one\n")
	s := New(path, env(nil))
	s.Resync = 50 * time.Millisecond
	if _, err := s.Load(); err != nil {
		t.Fatal(err)
	}
	// Changed before the watch starts: no event will come for it, the watch must still see it.
	writeFile(t, path, "APP_MESSAGE=changed\n")
	changes := watch(t, s)
	if c := next(t, changes); c.err != nil || c.live.Message != "changed" {
		t.Fatalf("%+v; want the change made before the watch", c)
	}
}

func TestWatchNeedsItsDirectory(t *testing.T) {
	s := New(filepath.Join(t.TempDir(), "missing", "live.env"), env(nil))
	if err := s.Watch(context.Background(), func(config.Live, error) {}); err == nil ||
		!strings.Contains(err.Error(), "watch CONFIG_FILE") {
		t.Fatalf("Watch = %v; want an error naming CONFIG_FILE", err)
	}
}
