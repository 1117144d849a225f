// Package nfconn keeps one nftables netlink connection open between an
// applier's transactions (opening one costs more than a small
// transaction) with socket buffers large enough for big batches.
package nfconn

import (
	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Lasting is a kept connection, opened on first use. Not safe for
// concurrent use: each applier serialises its own transactions.
type Lasting struct {
	c *nftables.Conn
	// setID numbers the sets this applier's batches create (AddSet).
	setID uint32
}

// AddSet adds s to c's pending batch, numbering it first when it has no
// ID. google/nftables numbers a set without one from a package counter
// that no lock guards, so two appliers building batches at once (several
// agents in one process, as tests run them) race on it. The ID only has
// to be unique within one batch: the kernel resolves it among the
// batch's own new sets.
func (l *Lasting) AddSet(c *nftables.Conn, s *nftables.Set, elems []nftables.SetElement) error {
	if s.ID == 0 {
		l.setID++
		if l.setID == 0 { // wrapped: 0 means "none"
			l.setID++
		}
		s.ID = l.setID
	}
	return c.AddSet(s, elems)
}

// Get returns the kept connection, opening it (inside the network
// namespace whose fd is netns, when non-zero) on first use.
func (l *Lasting) Get(netns int) (*nftables.Conn, error) {
	if l.c != nil {
		return l.c, nil
	}
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(bigBuffers)}
	if netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(netns))
	}
	c, err := nftables.New(opts...)
	if err == nil {
		l.c = c
	}
	return c, err
}

// Drop closes the kept connection after a failure, so the next
// transaction starts on a fresh socket (no stale acknowledgements or
// half-queued batch).
func (l *Lasting) Drop() {
	if l.c != nil {
		_ = l.c.CloseLasting()
		l.c = nil
	}
}

// bigBuffers raises the socket's buffers past the sysctl limits (root):
// a batch's acknowledgements overflow the default receive buffer
// (ENOBUFS, though the kernel committed the batch).
func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, 8<<20); e != nil && serr == nil {
				serr = e
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
