// Command etcd is the upstream etcd server, built from the Go module proxy: etcd's own
// go.mod replaces its sibling modules with local paths, so 'go install' cannot build it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
