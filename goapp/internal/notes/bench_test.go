package notes

import (
	"bytes"
	"fmt"
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
				if _, _, err := s.Put("bench", bytes.NewReader(content)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGet(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			s := newStore(b)
			if _, _, err := s.Put("bench", bytes.NewReader(bytes.Repeat([]byte("x"), size))); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Get("bench"); err != nil {
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
		if _, _, err := s.Put(fmt.Sprintf("note-%03d", i), bytes.NewReader([]byte("x"))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		list, err := s.List()
		if err != nil || len(list) != notes {
			b.Fatalf("List = %d notes, %v", len(list), err)
		}
	}
}
