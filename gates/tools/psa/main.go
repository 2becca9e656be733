// Command psa evaluates every pod template in Kubernetes manifests against the restricted Pod Security
// Standard at version "latest", with Kubernetes' own evaluator (k8s.io/pod-security-admission, the code the
// API server's admission plugin runs). The policy pack re-implements that standard in Python so that a
// preview can refuse a workload before it reaches a cluster; this command is the reference it is checked
// against (tests/policy/test_gates_psa.py, python -m gates.run psa).
//
//	psa [-format text|json] PATH...
//
// PATH is a manifest file or a directory, searched recursively for *.yaml and *.yml; "-" reads standard
// input. Every file may hold several YAML or JSON documents. Objects of a kind the admission plugin takes a
// pod spec from (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, PodTemplate,
// Job, CronJob) are decoded strictly, so a misspelt field is an error instead of a setting silently
// ignored; every other object is counted and left alone.
//
// Text output is one line per pod-bearing object, "Kind namespace/name: allowed" or
// "Kind namespace/name: forbidden: <the evaluator's reasons and details>". JSON output is a list of
// {"source", "kind", "namespace", "name", "allowed", "reasons", "details"}.
//
// Exit status: 0 when every pod template is allowed, 1 when any is forbidden, 2 on unreadable input.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

const evaluatorModule = "k8s.io/pod-security-admission"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("psa", flag.ContinueOnError)
	flags.SetOutput(stderr)
	format := flags.String("format", "text", "output format: text or json")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: psa [-format text|json] PATH... (files, directories searched for *.yaml/*.yml, or - for stdin)")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "psa: -format %q is not allowed; use text or json\n", *format)
		return 2
	}
	if flags.NArg() == 0 {
		flags.Usage()
		return 2
	}

	evaluator, err := newRestrictedEvaluator()
	if err != nil {
		fmt.Fprintf(stderr, "psa: %v\n", err)
		return 2
	}
	sources, err := manifestSources(flags.Args(), stdin)
	if err != nil {
		fmt.Fprintf(stderr, "psa: %v\n", err)
		return 2
	}
	var verdicts []Verdict
	objects := 0
	for _, source := range sources {
		found, count, err := evaluateSource(evaluator, source)
		if err != nil {
			fmt.Fprintf(stderr, "psa: %v\n", err)
			return 2
		}
		objects += count
		verdicts = append(verdicts, found...)
	}

	if *format == "json" {
		err = writeJSON(stdout, verdicts)
	} else {
		err = writeText(stdout, verdicts)
	}
	if err != nil {
		fmt.Fprintf(stderr, "psa: writing the report: %v\n", err)
		return 2
	}
	forbidden := countForbidden(verdicts)
	fmt.Fprintf(stderr, "psa: %d objects, %d with a pod template, %d forbidden (%s, %s %s)\n",
		objects, len(verdicts), forbidden, levelVersion, evaluatorModule, moduleVersion(evaluatorModule))
	if forbidden > 0 {
		return 1
	}
	return 0
}

func countForbidden(verdicts []Verdict) int {
	n := 0
	for _, v := range verdicts {
		if !v.Allowed {
			n++
		}
	}
	return n
}

// moduleVersion names the evaluator release compiled in, so a report says which Kubernetes judged it.
func moduleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown version)"
	}
	for _, dep := range info.Deps {
		if dep.Path == path {
			return dep.Version
		}
	}
	return "(unknown version)"
}

var errNoManifests = errors.New("no .yaml or .yml file found")
