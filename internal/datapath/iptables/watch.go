package iptables

import (
	"context"

	"golang.org/x/sys/unix"

	"novanet/internal/datapath/nfwatch"
)

// Watch reports, until ctx ends, every change the kernel announces to a
// managed table (filter, nat of family ip): iptables-nft's changes are
// nftables ruleset notifications, so another program's rule, policy or
// flush is seen at once. (iptables-legacy sends no notification: there
// only the periodic resync repairs.)
func (f *Firewall) Watch(ctx context.Context, notify func(reason string)) error {
	return nfwatch.Watch(ctx, f.Netns, unix.NFPROTO_IPV4, managedTables, notify)
}
