// Package conntrack removes connection-tracking entries, so that revoking
// something (a floating IP's mapping, a security group rule, a member of a
// source group) stops the flows it had allowed, not only new ones: the
// netfilter fast path lets an established flow through on its conntrack
// entry without consulting the rules again.
//
// It runs conntrack-tools' `conntrack -D` with the filter's flags. Deleting
// is rare (a revocation, not a boot) so a process per call is affordable.
package conntrack

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"novanet/internal/datapath/runner"
)

// Filter selects entries; zero fields match anything. At least one address
// must be set: an empty filter would flush the whole table.
type Filter struct {
	// Proto is "tcp", "udp", "icmp" or empty for any.
	Proto string
	// OrigSrc/OrigDst match the original direction (the packet as it
	// arrived, before DNAT); ReplySrc/ReplyDst the reply direction (after
	// NAT: a DNATed flow's reply source is the fixed address).
	OrigSrc, OrigDst   netip.Addr
	ReplySrc, ReplyDst netip.Addr
	// DstPort matches the original destination port (tcp/udp only).
	DstPort uint16
	// Mark, when non-zero, matches the conntrack mark.
	Mark uint32
}

// String is the filter as conntrack flags, for logs.
func (f Filter) String() string { return strings.Join(f.args(), " ") }

func (f Filter) args() []string {
	var a []string
	add := func(flag string, ip netip.Addr) {
		if ip.IsValid() {
			a = append(a, flag, ip.String())
		}
	}
	add("--orig-src", f.OrigSrc)
	add("--orig-dst", f.OrigDst)
	add("--reply-src", f.ReplySrc)
	add("--reply-dst", f.ReplyDst)
	if f.Proto != "" {
		a = append(a, "-p", f.Proto)
		if f.DstPort != 0 {
			a = append(a, "--orig-port-dst", strconv.Itoa(int(f.DstPort)))
		}
	}
	if f.Mark != 0 {
		a = append(a, "--mark", strconv.FormatUint(uint64(f.Mark), 10))
	}
	return a
}

// Validate refuses filters that would delete more than intended.
func (f Filter) Validate() error {
	if !f.OrigSrc.IsValid() && !f.OrigDst.IsValid() && !f.ReplySrc.IsValid() && !f.ReplyDst.IsValid() {
		return fmt.Errorf("conntrack: a filter needs at least one address (an empty one would flush every flow)")
	}
	if f.DstPort != 0 && f.Proto != "tcp" && f.Proto != "udp" {
		return fmt.Errorf("conntrack: a destination port needs proto tcp or udp, not %q", f.Proto)
	}
	return nil
}

var deletedCount = regexp.MustCompile(`(\d+) flow entries have been deleted`)

// Binary is the conntrack-tools program.
const Binary = "conntrack"

// Delete removes the IPv4 entries matching f in the current network
// namespace and returns how many were removed. No match is not an error.
func Delete(ctx context.Context, f Filter) (int, error) {
	return deleteWith(ctx, runner.Exec{Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}, f)
}

// combinedRunner runs a command and returns its standard output and
// error together (runner.Exec.RunCombined): conntrack prints its count on
// standard error.
type combinedRunner interface {
	RunCombined(ctx context.Context, stdin io.Reader, name string, args ...string) ([]byte, error)
}

func deleteWith(ctx context.Context, r combinedRunner, f Filter) (int, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	args := append([]string{"-D", "-f", "ipv4"}, f.args()...)
	out, err := r.RunCombined(ctx, nil, Binary, args...)
	n := 0
	if m := deletedCount.FindSubmatch(out); m != nil {
		n, _ = strconv.Atoi(string(m[1]))
	}
	// conntrack exits 1 when nothing matched ("0 flow entries have been
	// deleted"); that is the common, successful case.
	if err != nil && !(n == 0 && deletedCount.Match(out)) {
		return n, err
	}
	return n, nil
}

// DeleteAll runs Delete for each filter and returns the total removed and
// the first error; later filters still run after an error.
func DeleteAll(ctx context.Context, fs []Filter) (int, error) {
	total := 0
	var first error
	for _, f := range fs {
		n, err := Delete(ctx, f)
		total += n
		if err != nil && first == nil {
			first = err
		}
	}
	return total, first
}
