package client

import (
	"context"
	"net"
	"testing"
	"time"

	"novanet/internal/model"
)

// TestCallsHaveDeadlines: a server that accepts connections and never
// answers (a SIGSTOPped serve) does not hold any call past its deadline.
func TestCallsHaveDeadlines(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	c := New("http://"+ln.Addr().String(), "token").WithTimeout(300 * time.Millisecond)
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"HostState": func() error { _, err := c.HostState(ctx, "h"); return err },
		"Leases":    func() error { _, err := c.Leases(ctx, "h", "br100"); return err },
		"ReportApplied": func() error {
			return c.ReportApplied(ctx, "h", model.AppliedReport{Revision: 1})
		},
		"WaitHost": func() error { _, err := c.WaitHost(ctx, "h", 0, 200*time.Millisecond); return err },
	} {
		start := time.Now()
		err := call()
		took := time.Since(start)
		if err == nil {
			t.Errorf("%s: no error from a server that never answers", name)
		}
		if took > 2*time.Second {
			t.Errorf("%s took %s; want about its 300 ms deadline", name, took)
		}
	}
}
