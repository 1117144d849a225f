package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"novanet/internal/client"
	"novanet/internal/netnsdo"
)

func waitUntil(ctx context.Context, d time.Duration, f func() bool) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("timed out")
}

// Client is an admin API client that reaches serve inside the
// controller's namespace.
func (l *Lab) Client() *client.Client {
	return l.clientWithToken(l.st.AdminToken)
}

func (l *Lab) clientWithToken(tok string) *client.Client {
	ns := l.hostNS("controller")
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ctx, ns, network, addr)
		},
		DisableKeepAlives: true,
	}
	return client.New("http://"+apiAddr, tok).WithHTTPClient(&http.Client{Transport: tr, Timeout: 90 * time.Second})
}

// dialIn opens a connection from inside a namespace: the socket keeps the
// namespace it was created in.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := netnsdo.Do(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil && !nsExists(ns) {
		return nil, fmt.Errorf("lab namespace %s is gone; is the lab up? (%w)", ns, err)
	}
	return c, err
}

func (l *Lab) waitAPI(ctx context.Context) error {
	c := l.Client()
	err := waitUntil(ctx, 15*time.Second, func() bool {
		_, err := c.ListNetworks(ctx)
		return err == nil
	})
	if err != nil {
		return fmt.Errorf("novanet serve did not answer on %s: see %s", apiAddr, l.path("controller", "serve.log"))
	}
	return nil
}
