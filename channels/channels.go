// Package channels keeps which Teams channel each of gatebot's configured
// channel names (the keys of `channels:` in the config) is bound to, when
// the binding was made from Teams (`@gatebot channel register ops`) rather
// than written in the config. Bindings live in one Redis hash under the
// store's key prefix, so every replica sees the same ones.
//
// It imports Redis and the standard library only: no Teams, HTTP or other
// gatebot package. Who may bind what is the caller's decision.
package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound is returned for a name that is not bound.
var ErrNotFound = errors.New("channel name is not registered")

// ErrTaken is matched (errors.Is) when a name is already bound to another
// Teams channel; the error is a *TakenError carrying that binding.
var ErrTaken = errors.New("channel name is bound to another Teams channel")

// ErrUnavailable wraps errors from Redis.
var ErrUnavailable = errors.New("channel store unavailable")

// TakenError reports the binding that stands in the way.
type TakenError struct{ Current Binding }

func (e *TakenError) Error() string {
	return fmt.Sprintf("channels: %q is bound to %s", e.Current.Name, e.Current.ConversationID)
}

// Is makes errors.Is(err, ErrTaken) true.
func (e *TakenError) Is(target error) bool { return target == ErrTaken }

// Person is who registered a binding, as the authenticated activity said.
type Person struct {
	ID          string `json:"id"`
	AADObjectID string `json:"aad_object_id,omitempty"`
	Name        string `json:"name,omitempty"`
}

// Binding ties a configured channel name to one Teams channel.
type Binding struct {
	Name           string    `json:"name"`      // the config's channel name
	TenantID       string    `json:"tenant_id"` // the team's tenant
	TeamID         string    `json:"team_id"`   // 19:…@thread.tacv2 of the team
	TeamName       string    `json:"team_name,omitempty"`
	ConversationID string    `json:"conversation_id"` // the channel, 19:…@thread.tacv2
	ChannelName    string    `json:"channel_name,omitempty"`
	ServiceURL     string    `json:"service_url"`
	RegisteredBy   Person    `json:"registered_by"`
	RegisteredAt   time.Time `json:"registered_at"`
}

// Store reads and writes bindings in Redis.
type Store struct {
	rdb redis.UniversalClient
	key string
	now func() time.Time
}

// Options configures a Store.
type Options struct {
	// Prefix is prepended to the store's one key (e.g. "gatebot:");
	// required, so bindings sit with the rest of gatebot's data.
	Prefix string
	// Now stamps RegisteredAt; default time.Now.
	Now func() time.Time
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient, o Options) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("channels: nil redis client")
	}
	if o.Prefix == "" {
		return nil, errors.New("channels: Prefix is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{rdb: rdb, key: o.Prefix + "channels", now: o.Now}, nil
}

// maxTxRetries bounds retries of a binding change that raced another.
const maxTxRetries = 5

// Register binds b.Name to b.ConversationID, stamping RegisteredAt. A
// name already bound to the same channel is re-registered (its details
// refreshed); one bound elsewhere is left alone and a *TakenError
// returned. The stored binding is returned.
func (s *Store) Register(ctx context.Context, b Binding) (Binding, error) {
	if b.Name == "" || b.ConversationID == "" || b.ServiceURL == "" {
		return Binding{}, errors.New("channels: Name, ConversationID and ServiceURL are required")
	}
	b.RegisteredAt = s.now().UTC()
	raw, err := json.Marshal(b)
	if err != nil {
		return Binding{}, fmt.Errorf("channels: encode: %w", err)
	}
	err = s.change(ctx, b.Name, b.ConversationID, func(p redis.Pipeliner) {
		p.HSet(ctx, s.key, b.Name, raw)
	}, true)
	if err != nil {
		return Binding{}, err
	}
	return b, nil
}

// Unregister removes the binding of name, only when it is bound to
// conversationID: a channel can be released from where it is, not from
// elsewhere (*TakenError then). ErrNotFound when name is not bound.
func (s *Store) Unregister(ctx context.Context, name, conversationID string) error {
	return s.change(ctx, name, conversationID, func(p redis.Pipeliner) {
		p.HDel(ctx, s.key, name)
	}, false)
}

// change runs write in a transaction when name is unbound (and
// allowUnbound) or bound to conversationID.
func (s *Store) change(ctx context.Context, name, conversationID string, write func(redis.Pipeliner), allowUnbound bool) error {
	for range maxTxRetries {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			cur, err := s.get(ctx, tx, name)
			switch {
			case errors.Is(err, ErrNotFound) && !allowUnbound:
				return err
			case errors.Is(err, ErrNotFound):
			case err != nil:
				return err
			case cur.ConversationID != conversationID:
				return &TakenError{Current: cur}
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				write(p)
				return nil
			})
			return err
		}, s.key)
		if errors.Is(err, redis.TxFailedErr) {
			continue // another change landed in between: look again
		}
		if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrTaken) && !errors.Is(err, ErrUnavailable) {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	return fmt.Errorf("%w: %q kept changing", ErrUnavailable, name)
}

// Get returns the binding of name, or ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (Binding, error) {
	return s.get(ctx, s.rdb, name)
}

func (s *Store) get(ctx context.Context, c redis.Cmdable, name string) (Binding, error) {
	raw, err := c.HGet(ctx, s.key, name).Bytes()
	if errors.Is(err, redis.Nil) {
		return Binding{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return Binding{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var b Binding
	if err := json.Unmarshal(raw, &b); err != nil {
		return Binding{}, fmt.Errorf("channels: binding %q is unreadable: %w", name, err)
	}
	return b, nil
}

// List returns every binding, by name.
func (s *Store) List(ctx context.Context) ([]Binding, error) {
	all, err := s.rdb.HGetAll(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	out := make([]Binding, 0, len(all))
	var bad []string
	for name, raw := range all {
		var b Binding
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			bad = append(bad, name)
			continue
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(bad) > 0 {
		sort.Strings(bad)
		return out, fmt.Errorf("channels: unreadable bindings: %s", strings.Join(bad, ", "))
	}
	return out, nil
}
