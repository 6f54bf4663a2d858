// Command coredns is CoreDNS with only the plugins an in-cluster DNS needs:
// those of the Corefile kubeadm deploys (errors, health, ready, kubernetes,
// prometheus, forward, cache, loop, reload, loadbalance) plus log, hosts, bind
// and whoami for debugging. Leaving out the cloud back ends (route53, azure,
// clouddns, etcd, nomad, ...) keeps their SDKs out of the build.
//
// This is CoreDNS's documented way to pick plugins at compile time: import
// them for their registration side effect and set dnsserver.Directives before
// coremain.Run.
package main

import (
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics" // the "prometheus" directive
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/whoami"
)

func init() {
	// A request runs through the plugins in the order of dnsserver.Directives,
	// whatever their order in the Corefile, so keep upstream's order (generated
	// from its plugin.cfg) and drop only the directives whose plugin is not
	// compiled in: using one is then an "unknown directive" error when the
	// Corefile is parsed. The imports above are the only list of plugins; the
	// ones they pull in themselves (transfer, dnstap, metadata, debug) stay
	// usable too.
	var directives []string
	for _, name := range dnsserver.Directives {
		if _, err := caddy.DirectiveAction("dns", name); err == nil {
			directives = append(directives, name)
		}
	}
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
