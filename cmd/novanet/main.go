// Command novanet is the single novanet binary: server, agent, dnsmasq
// helper, lab and client commands. It only wires signals to cli.Main.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"novanet/internal/cli"
)

func main() {
	// TODO(lead): dispatch filepath.Base(os.Args[0]) == "novanet-dhcpbridge"
	// to dhcpbridge.Main(os.Args[1:]) once internal/dhcpbridge exists.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args)
	stop()
	os.Exit(code)
}
