package approvals

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Once reports whether key is seen for the first time within ttl (SET NX
// under "seen:"), for dropping activities the channel delivers twice.
func (s *Store) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.seenKey(key), 1, ttl).Result()
	if err != nil {
		return false, unavailable("dedupe", err)
	}
	return ok, nil
}

// PutConversation saves a conversation reference (opaque bytes) under key,
// without expiry; it is written when the bot is installed somewhere.
func (s *Store) PutConversation(ctx context.Context, key string, ref []byte) error {
	if err := s.rdb.Set(ctx, s.convKey(key), ref, 0).Err(); err != nil {
		return unavailable("save conversation", err)
	}
	return nil
}

// Conversation returns the reference saved under key, or ErrNotFound.
func (s *Store) Conversation(ctx context.Context, key string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.convKey(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("conversation %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, unavailable("load conversation", err)
	}
	return b, nil
}

// DeleteConversation forgets the reference saved under key (the bot was
// removed); deleting a missing one is not an error.
func (s *Store) DeleteConversation(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.convKey(key)).Err(); err != nil {
		return unavailable("delete conversation", err)
	}
	return nil
}
