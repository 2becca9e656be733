package server

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// document is the part of goapp/openapi.yaml that must agree with the code.
type document struct {
	OpenAPI string `yaml:"openapi"`
	Paths   map[string]map[string]struct {
		Security   []map[string][]string `yaml:"security"`
		Parameters []struct {
			Name   string         `yaml:"name"`
			Schema map[string]any `yaml:"schema"`
		} `yaml:"parameters"`
		Responses map[string]any `yaml:"responses"`
	} `yaml:"paths"`
	Components struct {
		Schemas map[string]struct {
			Pattern   string `yaml:"pattern"`
			MaxLength int    `yaml:"maxLength"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func loadDocument(t *testing.T) document {
	t.Helper()
	var doc document
	if err := yaml.Unmarshal(openAPIDocument(t), &doc); err != nil {
		t.Fatalf("goapp/openapi.yaml: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi: %q; want 3.1.0", doc.OpenAPI)
	}
	return doc
}

var ginParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestOpenAPIDocumentsEveryRoute keeps routes.go and goapp/openapi.yaml in agreement: the same operations,
// the token required exactly where the document says so, and each operation's documented answers covering
// what the server answers to a request without a token.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadDocument(t)
	s, _ := newServer(t, testConfig(t), true)

	var routes, documented []string
	for _, r := range s.engine.Routes() {
		routes = append(routes, r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}"))
	}
	for path, item := range doc.Paths {
		for method := range item {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	if !slices.Equal(routes, documented) {
		t.Fatalf("routes.go serves\n  %v\nopenapi.yaml documents\n  %v", routes, documented)
	}

	for _, r := range s.engine.Routes() {
		op := doc.Paths[ginParam.ReplaceAllString(r.Path, "{$1}")][strings.ToLower(r.Method)]
		target := strings.ReplaceAll(r.Path, ":name", "some-note")
		rec := do(s, r.Method, target, strings.NewReader("x"), map[string]string{"Authorization": ""})
		secured := len(op.Security) > 0
		if secured != (rec.Code == 401) {
			t.Errorf("%s %s: documented security %v, but without a token it answers %d", r.Method, r.Path, op.Security, rec.Code)
		}
		if _, ok := op.Responses[fmt.Sprint(rec.Code)]; !ok {
			t.Errorf("%s %s answers %d without a token; the document lists %v", r.Method, r.Path, rec.Code, keys(op.Responses))
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIMatchesTheCode: the patterns and bounds the document promises are the code's own.
func TestOpenAPIMatchesTheCode(t *testing.T) {
	doc := loadDocument(t)
	cursor := doc.Components.Schemas["Cursor"]
	if cursor.Pattern != cursorPattern || cursor.MaxLength != maxCursorLength {
		t.Errorf("Cursor schema: pattern %q, maxLength %d; want %q, %d", cursor.Pattern, cursor.MaxLength, cursorPattern, maxCursorLength)
	}
	var limit map[string]any
	for _, p := range doc.Paths["/notes"]["get"].Parameters {
		if p.Name == "limit" {
			limit = p.Schema
		}
	}
	if fmt.Sprint(limit["minimum"], limit["maximum"], limit["default"]) != fmt.Sprint(1, maxListLimit, defaultListLimit) {
		t.Errorf("limit schema %v; want minimum 1, maximum %d, default %d", limit, maxListLimit, defaultListLimit)
	}
	s, _ := newServer(t, testConfig(t), true)
	rec := do(s, "GET", "/openapi.yaml", nil, nil)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/yaml" || rec.Body.String() != string(openAPIDocument(t)) {
		t.Fatalf("GET /openapi.yaml = %d %q; want the document as application/yaml", rec.Code, rec.Header().Get("Content-Type"))
	}
}
