// Package nfwatch follows nftables' ruleset notifications
// (NFNLGRP_NFTABLES) for a set of tables, so a firewall applier sees
// another program's rule, policy, flush or set change at once. iptables-nft
// changes arrive this way too; iptables-legacy sends none.
package nfwatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"novanet/internal/netnsdo"
)

// Watch reports, until ctx ends, every change the kernel announces to one
// of tables of family (unix.NFPROTO_IPV4, ...): tables, chains, rules, sets
// and set elements, in network namespace netns ("" = the current one).
// notify gets a short description. The caller's own commits notify as
// well; the full read they cause finds nothing to do, so there is no loop.
func Watch(ctx context.Context, netns string, family byte, tables []string, notify func(reason string)) error {
	fd, err := openMonitor(netns)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := make([]byte, 1<<16)
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			continue // the receive timeout: look at ctx again
		case errors.Is(err, unix.ENOBUFS):
			notify("nftables notifications overflowed")
			continue
		case err != nil:
			return fmt.Errorf("read nftables notifications: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if why := describe(m, family, tables); why != "" {
				notify(why)
			}
		}
	}
	return nil
}

// openMonitor opens a netfilter netlink socket subscribed to nftables
// notifications, inside netns when it is set.
func openMonitor(netns string) (int, error) {
	fd := -1
	open := func() error {
		s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("open netfilter netlink socket: %w", err)
		}
		if err := unix.Bind(s, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.NFNLGRP_NFTABLES - 1)}); err != nil {
			unix.Close(s)
			return fmt.Errorf("subscribe to nftables notifications: %w", err)
		}
		// A first sync of thousands of elements notifies each one.
		_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		tv := unix.Timeval{Usec: 300_000}
		_ = unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		fd = s
		return nil
	}
	var err error
	if netns != "" {
		err = netnsdo.Do(netns, open)
	} else {
		err = open()
	}
	return fd, err
}

const sizeofNfgenmsg = 4

// describe names a notification about a managed table, "" for others.
func describe(m syscall.NetlinkMessage, family byte, tables []string) string {
	if m.Header.Type>>8 != unix.NFNL_SUBSYS_NFTABLES || len(m.Data) < sizeofNfgenmsg {
		return ""
	}
	msg := m.Header.Type & 0xff
	if msg == unix.NFT_MSG_NEWGEN || m.Data[0] != family {
		return ""
	}
	table := firstStringAttr(m.Data[sizeofNfgenmsg:])
	if !slices.Contains(tables, table) {
		return ""
	}
	return fmt.Sprintf("nftables %s in table %s", msgName(msg), table)
}

// firstStringAttr returns attribute 1 (the table name in table, chain,
// rule, set and element messages).
func firstStringAttr(b []byte) string {
	for len(b) >= unix.SizeofNlAttr {
		l := int(uint16(b[0]) | uint16(b[1])<<8)
		typ := (uint16(b[2]) | uint16(b[3])<<8) & 0x3fff
		if l < unix.SizeofNlAttr || l > len(b) {
			return ""
		}
		if typ == 1 {
			return strings.TrimRight(string(b[unix.SizeofNlAttr:l]), "\x00")
		}
		l = (l + 3) &^ 3
		if l > len(b) {
			return ""
		}
		b = b[l:]
	}
	return ""
}

func msgName(msg uint16) string {
	switch msg {
	case unix.NFT_MSG_NEWTABLE:
		return "table added"
	case unix.NFT_MSG_DELTABLE:
		return "table deleted"
	case unix.NFT_MSG_NEWCHAIN:
		return "chain added or changed"
	case unix.NFT_MSG_DELCHAIN:
		return "chain deleted"
	case unix.NFT_MSG_NEWRULE:
		return "rule added"
	case unix.NFT_MSG_DELRULE:
		return "rule deleted"
	case unix.NFT_MSG_NEWSET:
		return "set added"
	case unix.NFT_MSG_DELSET:
		return "set deleted"
	case unix.NFT_MSG_NEWSETELEM:
		return "set element added"
	case unix.NFT_MSG_DELSETELEM:
		return "set element deleted"
	}
	return fmt.Sprintf("change (message %d)", msg)
}
