// Package liveconfig reads and watches CONFIG_FILE: the settings that may change while goapp runs (see
// config.LiveKeys), as NAME=value lines.
//
// The file is meant to be a key of a ConfigMap mounted as a volume. The kubelet updates such a volume by
// writing a new timestamped directory and swapping the "..data" symbolic link to it, so the file's own inode
// never changes and a watch on the file alone would miss the update. The watcher therefore watches the
// file's directory, reads the file by its path after any event there, and acts only when the content differs
// from the last one it saw. A periodic re-read covers file systems that report no events. (A ConfigMap mounted
// with subPath is never updated by the kubelet; mount the whole volume.)
package liveconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fsnotify/fsnotify"

	"goapp/internal/config"
)

// MaxFileBytes bounds the file; a few settings never need more.
const MaxFileBytes = 64 << 10

const (
	// debounce lets a burst of events (the kubelet's swap makes several) end before the file is read.
	debounce = 100 * time.Millisecond
	// DefaultResync is how often the file is read even without events.
	DefaultResync = 10 * time.Second
)

// Parse reads NAME=value lines: NAME one of config.LiveKeys, the value everything after the first "=" (kept
// verbatim, as an environment variable's would be). Blank lines and lines starting with # are ignored. Every
// problem is reported, one line each, naming the line and the key.
func Parse(data []byte) (map[string]string, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("file is larger than %d bytes", MaxFileBytes)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("file is not UTF-8 text")
	}
	values := map[string]string{}
	var errs []error
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("line %d: want NAME=value, got %q", i+1, trimmed))
		case !slices.Contains(config.LiveKeys, name):
			errs = append(errs, fmt.Errorf("line %d: unknown key %q: want one of %s", i+1, name,
				strings.Join(config.LiveKeys, ", ")))
		case strings.ContainsAny(value, "\x00\r"):
			// A carriage return is only a line end (files written on Windows); inside a value it would not
			// survive a round trip through this format.
			errs = append(errs, fmt.Errorf("line %d: %s contains a NUL byte or a carriage return", i+1, name))
		default:
			if _, dup := values[name]; dup {
				errs = append(errs, fmt.Errorf("line %d: %s is set twice", i+1, name))
				continue
			}
			values[name] = value
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return values, nil
}

// Source is one CONFIG_FILE over the process environment: a key the file sets wins, a key it leaves out has
// its environment value (or default), so deleting a line undoes it.
type Source struct {
	path   string
	getenv func(string) string
	// Resync is how often Watch reads the file without an event.
	Resync time.Duration

	// last is the content (or read error) seen last; only Load, then the Watch goroutine, touch it.
	last []byte
}

// New returns the source of path over getenv. It reads nothing yet.
func New(path string, getenv func(string) string) *Source {
	return &Source{path: path, getenv: getenv, Resync: DefaultResync}
}

// Path is the file's path.
func (s *Source) Path() string { return s.path }

// Load reads and validates the file now.
func (s *Source) Load() (config.Live, error) {
	data, err := s.read()
	s.last = fingerprint(data, err)
	if err != nil {
		return config.Live{}, err
	}
	return s.settings(data)
}

func (s *Source) read() ([]byte, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("CONFIG_FILE %s: %w", s.path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("CONFIG_FILE %s: %w", s.path, err)
	}
	return data, nil
}

func (s *Source) settings(data []byte) (config.Live, error) {
	values, err := Parse(data)
	if err == nil {
		var live config.Live
		live, err = config.LoadLive(func(name string) string {
			if v, ok := values[name]; ok {
				return v
			}
			return s.getenv(name)
		})
		if err == nil {
			return live, nil
		}
	}
	// One line per problem, each naming the file.
	var lines []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		lines = append(lines, fmt.Sprintf("CONFIG_FILE %s: %s", s.path, line))
	}
	return config.Live{}, errors.New(strings.Join(lines, "\n"))
}

// fingerprint identifies what a read gave, so that an unchanged file (valid or not) is not applied or
// reported again.
func fingerprint(data []byte, err error) []byte {
	if err != nil {
		return []byte("error: " + err.Error())
	}
	return append([]byte("data: "), data...)
}

// Watch calls changed whenever the file's content differs from the last content seen (by Load or an earlier
// call): with the new settings, or with the error that makes the file unusable, in which case the caller keeps
// its settings. It returns when ctx ends, or at once if the directory cannot be watched.
func (s *Source) Watch(ctx context.Context, changed func(config.Live, error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch CONFIG_FILE %s: %w", s.path, err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("watch CONFIG_FILE %s: %w", s.path, err)
	}
	// A change between Load and the start of the watch has no event of its own.
	s.check(changed)

	resync := time.NewTicker(s.Resync)
	defer resync.Stop()
	settle := time.NewTimer(debounce)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
			settle.Reset(debounce)
		case _, ok := <-w.Errors:
			// An overflowed event queue means events were lost: read the file to be sure.
			if !ok {
				return nil
			}
			settle.Reset(debounce)
		case <-settle.C:
			s.check(changed)
		case <-resync.C:
			s.check(changed)
		}
	}
}

func (s *Source) check(changed func(config.Live, error)) {
	data, err := s.read()
	seen := fingerprint(data, err)
	if bytes.Equal(seen, s.last) {
		return
	}
	s.last = seen
	if err != nil {
		changed(config.Live{}, err)
		return
	}
	changed(s.settings(data))
}
