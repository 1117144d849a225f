package nftables

import (
	"context"

	"golang.org/x/sys/unix"

	"novanet/internal/datapath/nfwatch"
)

// Watch reports, until ctx ends, every change the kernel announces to one
// of novanet's tables (family ip), so drift is repaired at once.
func (f *Firewall) Watch(ctx context.Context, notify func(reason string)) error {
	return nfwatch.Watch(ctx, f.Netns, unix.NFPROTO_IPV4, ManagedTables(), notify)
}
