// Package blackbox holds goapp's black-box tests: several real goapp processes, built from this module, on one
// data directory, as replicas on a ReadWriteMany volume and the old and new pod of a rollout are; the full and
// read-only volume cases run on a small tmpfs that the tests mount themselves, so they need root.
//
// They are behind the "blackbox" build tag, so that `go test ./...` stays fast and needs no root:
//
//	go test -tags blackbox ./blackbox
//
// goapp/scripts/test.sh runs them as part of `make test`.
package blackbox
