package notes

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

var benchSizes = []int{1 << 10, 64 << 10}

// BenchmarkPut includes the two fsyncs that make a write durable; it measures the disk as much as the code.
func BenchmarkPut(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			s := newStore(b)
			content := bytes.Repeat([]byte("x"), size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.Put("bench", bytes.NewReader(content), int64(size)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGet streams the note as the handler does.
func BenchmarkGet(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			s := newStore(b)
			if _, _, err := s.Put("bench", bytes.NewReader(bytes.Repeat([]byte("x"), size)), int64(size)); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				f, _, err := s.Open("bench")
				if err != nil {
					b.Fatal(err)
				}
				_, err = io.Copy(io.Discard, f)
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkList(b *testing.B) {
	s := newStore(b)
	const notes = 100
	for i := range notes {
		if _, _, err := s.Put(fmt.Sprintf("note-%03d", i), bytes.NewReader([]byte("x")), 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		list, next, err := s.List("", notes)
		if err != nil || len(list) != notes || next != "" {
			b.Fatalf("List = %d notes, next %q, %v", len(list), next, err)
		}
	}
}
