package server

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// A cursor is the opaque form of a position in the name order of notes: the unpadded base64url of the last
// name of a page. Clients only hand back what "next" gave them; a forged cursor can do no more than position
// the listing, since any position is valid, so every well-formed cursor is accepted and only malformed ones
// are refused. cursorPattern, in goapp/openapi.yaml too, describes exactly the accepted strings
// (FuzzCursor checks that).
const (
	maxCursorLength = 128
	cursorPattern   = `^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$`
)

func encodeCursor(position string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(position))
}

// parseCursor reads the after query parameter; empty means the first page.
func parseCursor(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	// The decoder skips line breaks; a cursor never has any.
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(v) > maxCursorLength || strings.ContainsAny(v, "\r\n") {
		return "", fmt.Errorf("invalid after=%q: want the next value of a previous page (base64url, up to %d characters)",
			v, maxCursorLength)
	}
	return string(b), nil
}
