package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"novanet/internal/client"
	"novanet/internal/metadata"
	"novanet/internal/model"
)

// PasswordAPI stores a guest's metadata password (internal/client).
type PasswordAPI interface {
	SetMetadataPassword(ctx context.Context, host, instanceUUID, password string) error
}

// Neighbours returns the MAC this host's neighbour table holds for addr
// on device (link.Links.NeighbourMAC).
type Neighbours func(device string, addr netip.Addr) (string, error)

// ServeMetadata answers the metadata requests of this host's instances on
// addr (metadata_host:metadata_port) from the cached host state until ctx
// ends, so a booted guest keeps its metadata while the API is down. Run
// it beside Run.
func (a *Agent) ServeMetadata(ctx context.Context, addr string, opts metadata.Options, api PasswordAPI, neigh Neighbours) {
	opts.Logger = a.cfg.Logger.With("component", "metadata", "host", a.cfg.Host)
	h := metadata.New(&agentMetadata{a: a, api: api, neigh: neigh}, opts)
	metadata.ListenAndServe(ctx, addr, h, opts.Logger, 5*time.Second, nil)
}

// agentMetadata is the metadata.Source over the agent's host state. The
// state may lag the store by a watch round trip, so an answer is given
// only when the host's neighbour table puts the requester at the MAC of
// the VIF the state names: a deleted instance's successor on the same
// address (a new VIF, a new MAC) gets 503 and retries until the state
// catches up, never the old instance's data.
type agentMetadata struct {
	a     *Agent
	api   PasswordAPI
	neigh Neighbours
}

func (s *agentMetadata) find(match func(model.InstanceMetadata) bool) (model.InstanceMetadata, bool) {
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	for _, md := range s.a.state.Metadata {
		if !match(md) {
			continue
		}
		// The host state names the network by id only (its facts are in
		// state.Networks once).
		for _, hn := range s.a.state.Networks {
			if hn.Network.ID == md.Network.ID {
				md.Network = hn.Network
			}
		}
		return md, true
	}
	return model.InstanceMetadata{}, false
}

func (s *agentMetadata) MetadataByAddress(_ context.Context, addr netip.Addr) (model.InstanceMetadata, error) {
	md, ok := s.find(func(md model.InstanceMetadata) bool { return md.Address == addr })
	if !ok {
		return md, model.Errorf(model.ErrNotFound, "no local instance has address %s", addr)
	}
	mac, err := s.neigh(md.Network.Bridge, addr)
	if err != nil {
		return md, fmt.Errorf("%w: cannot tell which interface %s is (%v)", metadata.ErrUnavailable, addr, err)
	}
	if !strings.EqualFold(mac, md.MAC) {
		s.a.log.Info("metadata request from an interface the cached state does not know yet", "address", addr, "mac", mac, "state_mac", md.MAC)
		return md, fmt.Errorf("%w: %s is at %s, not at the interface %s this host's state names; the state is being refreshed", metadata.ErrUnavailable, addr, mac, md.MAC)
	}
	return md, nil
}

func (s *agentMetadata) MetadataByInstance(_ context.Context, uuid string, addr netip.Addr) (model.InstanceMetadata, error) {
	md, ok := s.find(func(md model.InstanceMetadata) bool { return md.UUID == uuid && md.Address == addr })
	if !ok {
		md, ok = s.find(func(md model.InstanceMetadata) bool { return md.UUID == uuid })
	}
	if !ok {
		return md, model.Errorf(model.ErrNotFound, "instance %s is not on this host", uuid)
	}
	return md, nil
}

// SetMetadataPassword goes through to the API (the agent has no store);
// once stored, the cached state says so at once, so a second POST gets
// 409 before the watch brings the new state.
func (s *agentMetadata) SetMetadataPassword(ctx context.Context, uuid, password string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := s.api.SetMetadataPassword(ctx, s.a.cfg.Host, uuid, password)
	var he *client.HTTPError
	if err != nil && !errors.As(err, &he) {
		return fmt.Errorf("%w: the password is stored by the API, which cannot be reached from this host (%v)", metadata.ErrUnavailable, err)
	}
	if err != nil && he.Status >= 500 {
		return fmt.Errorf("%w: the API could not store the password (%v)", metadata.ErrUnavailable, err)
	}
	if err != nil {
		return err
	}
	s.a.mu.Lock()
	defer s.a.mu.Unlock()
	for i := range s.a.state.Metadata {
		if s.a.state.Metadata[i].UUID == uuid {
			s.a.state.Metadata[i].Password = password
		}
	}
	return nil
}
