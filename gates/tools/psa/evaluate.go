package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	kyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/admission"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// levelVersion is what our namespaces enforce (pod-security.kubernetes.io/enforce: restricted,
// enforce-version: latest), so it is what the API server would hold these pods to.
var levelVersion = api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}

// Verdict is the evaluator's judgement of one object's pod template.
type Verdict struct {
	Source    string   `json:"source"`
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Allowed   bool     `json:"allowed"`
	Reasons   []string `json:"reasons"`
	Details   []string `json:"details"`
}

// Source is one input: a file, or standard input.
type Source struct {
	Name string
	Data []byte
}

// newRestrictedEvaluator is the admission plugin's evaluator with its default (non-experimental) checks.
func newRestrictedEvaluator() (policy.Evaluator, error) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks())
	if err != nil {
		return nil, fmt.Errorf("building the Pod Security evaluator: %w", err)
	}
	return evaluator, nil
}

// scheme decodes the API groups the admission plugin takes pod specs from.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(corev1.AddToScheme(s))
	utilruntime.Must(appsv1.AddToScheme(s))
	utilruntime.Must(batchv1.AddToScheme(s))
	return s
}()

// decodedVersions names the scheme's versions for errors; Kubernetes 1.34 serves no other for these kinds.
const decodedVersions = "v1, apps/v1 and batch/v1"

// strictDecoder refuses unknown and duplicate fields: the evaluator sees typed structs, so a misspelt
// field would otherwise vanish and be judged as unset.
var strictDecoder = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// manifestSources reads every path: "-" is standard input, a directory contributes its *.yaml and *.yml
// files (recursively, in lexical order, following links to files), a file is read as given.
func manifestSources(paths []string, stdin io.Reader) ([]Source, error) {
	var sources []Source
	for _, path := range paths {
		if path == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("reading standard input: %w", err)
			}
			sources = append(sources, Source{Name: "<stdin>", Data: data})
			continue
		}
		info, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, errors.Unwrap(err))
		}
		files := []string{path}
		if info.IsDir() {
			if files, err = manifestFiles(path); err != nil {
				return nil, err
			}
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, err
			}
			sources = append(sources, Source{Name: file, Data: data})
		}
	}
	return sources, nil
}

func manifestFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !entry.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: %w", dir, errNoManifests)
	}
	sort.Strings(files)
	return files, nil
}

// evaluateSource judges every pod-bearing object of one source; it also returns how many objects it held.
func evaluateSource(evaluator policy.Evaluator, source Source) ([]Verdict, int, error) {
	reader := kyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(source.Data)))
	var verdicts []Verdict
	objects := 0
	for index := 1; ; index++ {
		document, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return verdicts, objects, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%s: document %d: %w", source.Name, index, err)
		}
		verdict, isObject, err := evaluateDocument(evaluator, document)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: document %d: %w", source.Name, index, err)
		}
		if isObject {
			objects++
		}
		if verdict != nil {
			verdict.Source = source.Name
			verdicts = append(verdicts, *verdict)
		}
	}
}

// evaluateDocument returns the verdict on one YAML or JSON document (nil when it bears no pod template),
// and whether the document was an object at all (an empty document is not).
func evaluateDocument(evaluator policy.Evaluator, document []byte) (*Verdict, bool, error) {
	asJSON, err := yaml.YAMLToJSON(document)
	if err != nil {
		return nil, false, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	if trimmed := bytes.TrimSpace(asJSON); bytes.Equal(trimmed, []byte("null")) || len(trimmed) == 0 {
		return nil, false, nil
	}
	gvk, err := kjson.DefaultMetaFactory.Interpret(asJSON)
	if err != nil {
		return nil, false, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if gvk.Kind == "" || gvk.Version == "" {
		return nil, false, errors.New("every document must be a Kubernetes object with apiVersion and kind")
	}
	// The admission plugin names the resources it takes pod specs from; a kind maps to its resource the
	// way the API server's REST mapping guesses it for built-in kinds.
	resource, _ := apimeta.UnsafeGuessKindToResource(*gvk)
	if !(admission.DefaultPodSpecExtractor{}).HasPodSpec(resource.GroupResource()) {
		return nil, true, nil
	}
	if !scheme.Recognizes(*gvk) {
		return nil, true, fmt.Errorf("%s %s carries a pod template, but this tool decodes only %s",
			gvk.Kind, gvk.GroupVersion(), decodedVersions)
	}
	object, _, err := strictDecoder.Decode(asJSON, nil, nil)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", gvk.Kind, err)
	}
	accessor, err := apimeta.Accessor(object)
	if err != nil {
		return nil, true, err
	}
	verdict := &Verdict{Kind: gvk.Kind, Namespace: accessor.GetNamespace(), Name: accessor.GetName(),
		Reasons: []string{}, Details: []string{}}
	podMetadata, podSpec, err := admission.DefaultPodSpecExtractor{}.ExtractPodSpec(object)
	if err != nil {
		return nil, true, fmt.Errorf("%s %s: %w", gvk.Kind, describe(verdict), err)
	}
	if podSpec == nil {
		// A ReplicationController may omit its template; the admission plugin allows it, as here.
		verdict.Allowed = true
		return verdict, true, nil
	}
	result := policy.AggregateCheckResults(evaluator.EvaluatePod(levelVersion, podMetadata, podSpec))
	verdict.Allowed = result.Allowed
	verdict.Reasons = append(verdict.Reasons, result.ForbiddenReasons...)
	verdict.Details = append(verdict.Details, result.ForbiddenDetails...)
	return verdict, true, nil
}

func describe(v *Verdict) string {
	if v.Namespace == "" {
		return v.Name
	}
	return v.Namespace + "/" + v.Name
}

func writeText(out io.Writer, verdicts []Verdict) error {
	for _, v := range verdicts {
		line := fmt.Sprintf("%s %s: allowed", v.Kind, describe(&v))
		if !v.Allowed {
			aggregate := policy.AggregateCheckResult{ForbiddenReasons: v.Reasons, ForbiddenDetails: v.Details}
			line = fmt.Sprintf("%s %s: forbidden by %s: %s (%s)", v.Kind, describe(&v), levelVersion,
				aggregate.ForbiddenDetail(), v.Source)
		}
		if _, err := fmt.Fprintln(out, line); err != nil {
			return err
		}
	}
	return nil
}

func writeJSON(out io.Writer, verdicts []Verdict) error {
	if verdicts == nil {
		verdicts = []Verdict{}
	}
	encoder := json.NewEncoder(out)
	encoder.SetIndent("", "  ")
	return encoder.Encode(verdicts)
}
