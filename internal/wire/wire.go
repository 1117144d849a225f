// Package wire is the one definition of the OpenStack Compute (nova)
// JSON views novanet serves under /v2.1: the API server builds them from
// model values and the client reads them back into model values, so the
// two sides cannot drift apart. Field names are nova's (gophercloud,
// python-openstackclient and novaclient read them); fields are listed in
// the order of their JSON names so the bytes match the map-built views
// the server sent before these types existed. Absent values are JSON null
// as in nova, and lists are [] when empty, never null.
package wire

import (
	"encoding/json"
	"net/netip"
	"time"
)

// List is a JSON array that encodes as [] when it holds nothing: nova
// clients iterate over these fields and some fail on null.
type List[T any] []T

// MarshalJSON implements json.Marshaler.
func (l List[T]) MarshalJSON() ([]byte, error) {
	if l == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]T(l))
}

// NovaTime is nova's timestamp format (no zone, microseconds), which
// gophercloud parses as JSONRFC3339MilliNoZ.
const NovaTime = "2006-01-02T15:04:05.000000"

func timeOrNull(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(NovaTime)
	return &s
}

func addrOrNull(a netip.Addr) *string {
	if !a.IsValid() {
		return nil
	}
	s := a.String()
	return &s
}

func stringOrNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func intOrNull(v int) *int {
	if v == 0 {
		return nil
	}
	return &v
}

// parseAddr reads an optional address back; a malformed one reads as
// absent, as the client always treated it.
func parseAddr(s *string) netip.Addr {
	if s == nil {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(*s)
	return a
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
