// Package netnsdo runs a function inside a named network namespace, on a
// thread switched there and back. Sockets opened inside keep their
// namespace after the switch back; that is how the agent's appliers, the
// lab and the tests reach a host namespace without `ip netns exec`.
package netnsdo

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs f with the calling goroutine's work moved to a thread inside the
// namespace name. The thread goes back to its own namespace afterwards;
// if that fails it stays locked and dies with its goroutine, so no other
// goroutine ever runs in the wrong namespace.
func Do(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("network namespace %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", name, err)
			return
		}
		err = f()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}
