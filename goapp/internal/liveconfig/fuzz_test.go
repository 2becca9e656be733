package liveconfig

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"goapp/internal/config"
)

// FuzzParse checks that any file either fails with one line per problem, each naming its line, or gives only
// known keys whose values survive being written back as NAME=value lines.
func FuzzParse(f *testing.F) {
	f.Add([]byte("APP_MESSAGE=hello\nLOG_LEVEL=debug\n"))
	f.Add([]byte("# comment\r\n\r\n LOG_LEVEL = warn \r\n"))
	f.Add([]byte("APP_MESSAGE==x=\n"))
	f.Add([]byte("PORT=1\nLOG_LEVEL\n"))
	f.Add([]byte("APP_MESSAGE=\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		values, err := Parse(data)
		if err != nil {
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if !strings.HasPrefix(line, "line ") && !strings.HasPrefix(line, "file ") {
					t.Fatalf("error line %q names neither a line nor the file", line)
				}
			}
			return
		}
		var b strings.Builder
		for name, value := range values {
			if !slices.Contains(config.LiveKeys, name) {
				t.Fatalf("Parse accepted unknown key %q", name)
			}
			if strings.ContainsAny(value, "\n\x00") || strings.HasSuffix(value, "\r") {
				t.Fatalf("value %q of %s spans lines or holds NUL", value, name)
			}
			b.WriteString(name + "=" + value + "\n")
		}
		again, err := Parse([]byte(b.String()))
		if err != nil || !maps.Equal(again, values) {
			t.Fatalf("written back as %q, Parse = %v, %v; want %v", b.String(), again, err, values)
		}
	})
}
