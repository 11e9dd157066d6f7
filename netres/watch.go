package netres

import (
	"context"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkEvent is a change of a watched link.
type LinkEvent struct {
	Interface string
	// Up is false when the link lost carrier, was set down or removed.
	Up bool
	// Removed is true when the link no longer exists.
	Removed bool
}

func (e LinkEvent) String() string {
	switch {
	case e.Removed:
		return e.Interface + " removed"
	case e.Up:
		return e.Interface + " up"
	default:
		return e.Interface + " down"
	}
}

// LinkWatcher reports changes of links: Linux from a netlink
// subscription, Fake from SetLinkUp and RemoveLink.
type LinkWatcher interface {
	WatchLinks(ctx context.Context, names []string) (<-chan LinkEvent, error)
}

var (
	_ LinkWatcher = (*Linux)(nil)
	_ LinkWatcher = (*Fake)(nil)
)

// WatchLinks reports changes of the named links until ctx ends: one event
// per change of their up state (the first event of a link is its state when
// the watch starts). The channel is closed when the watch ends; err is
// non-nil if the subscription cannot be made.
func (o *Linux) WatchLinks(ctx context.Context, names []string) (<-chan LinkEvent, error) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	errs := make(chan error, 1)
	ns := o.ns
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		Namespace:    &ns,
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to link changes: %w", err)
	}
	out := make(chan LinkEvent, 16)
	go func() {
		defer close(out)
		defer close(done)
		last := map[string]bool{}
		for {
			select {
			case <-ctx.Done():
				return
			case <-errs:
				// The subscription broke: report every watched link
				// lost, which is what the caller can no longer rule out.
				for _, n := range names {
					select {
					case out <- LinkEvent{Interface: n}:
					case <-ctx.Done():
					}
				}
				return
			case u, ok := <-updates:
				if !ok {
					return
				}
				name := u.Link.Attrs().Name
				if !slices.Contains(names, name) {
					continue
				}
				ev := LinkEvent{Interface: name, Up: toLink(u.Link).Up}
				if u.Header.Type == unix.RTM_DELLINK {
					ev.Up, ev.Removed = false, true
				}
				if prev, seen := last[name]; seen && prev == ev.Up && !ev.Removed {
					continue
				}
				last[name] = ev.Up
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
