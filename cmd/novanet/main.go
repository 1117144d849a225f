// Command novanet is the single novanet binary: server, agent, dnsmasq
// helper, lab and client commands. It only wires signals to cli.Main.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"novanet/internal/cli"
	"novanet/internal/dhcpbridge"
)

func main() {
	// dnsmasq runs us as its --dhcp-script through a novanet-dhcpbridge
	// link: answer before anything else starts.
	if filepath.Base(os.Args[0]) == "novanet-dhcpbridge" {
		os.Exit(dhcpbridge.Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args)
	stop()
	os.Exit(code)
}
