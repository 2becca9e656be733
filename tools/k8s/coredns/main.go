// Command coredns is the local cluster's DNS server: upstream CoreDNS with only the plugins the
// cluster uses (the documented way to build a trimmed CoreDNS is to choose the plugin set in
// main). It runs as a host process on the node address; it has no forwarder on purpose, so no
// query ever leaves the machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	// Same relative order as upstream's plugin.cfg: it decides the order of the plugin chain.
	dnsserver.Directives = []string{"bind", "ready", "errors", "log", "loadbalance", "cache", "kubernetes"}
}

func main() {
	coremain.Run()
}
