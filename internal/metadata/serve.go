package metadata

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"
)

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// ListenAndServe serves h on addr until ctx ends. The socket is bound
// with SO_REUSEPORT so that serve (on metadata_listen, usually 0.0.0.0)
// and the agent (on metadata_host) can share a host and a port: the
// kernel gives each connection to the most specific listener, the
// agent's, and to serve's while the agent is down. A failed bind (the port
// taken, the address not yet on the host) is logged and retried every
// retry instead of ending the caller: the API beside it keeps working,
// and the service appears as soon as it can. ready, when not nil, gets
// each bound address.
func ListenAndServe(ctx context.Context, addr string, h http.Handler, log *slog.Logger, retry time.Duration, ready func(net.Addr)) {
	warned := false
	for ctx.Err() == nil {
		lc := net.ListenConfig{Control: reusePort}
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			if !warned {
				log.Error("metadata service cannot listen; retrying", "address", addr, "every", retry, "err", err,
					"fix", "free the port or set metadata_listen / metadata_port")
				warned = true
			}
			select {
			case <-ctx.Done():
			case <-time.After(retry):
			}
			continue
		}
		warned = false
		log.Info("metadata service listening", "address", ln.Addr().String())
		if ready != nil {
			ready(ln.Addr())
		}
		srv := NewServer(h)
		done := make(chan struct{})
		go func() {
			defer close(done)
			<-ctx.Done()
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shut)
		}()
		err = srv.Serve(ln)
		if ctx.Err() != nil {
			<-done
			return
		}
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("metadata service stopped; restarting", "address", addr, "err", err)
		}
		_ = srv.Close()
	}
}
