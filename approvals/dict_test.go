package approvals

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLearnedDictionary: the first gate with a conversation reference
// teaches the dictionary; records name it and are much smaller; another
// Store (a replica, a restart) reads them; the dictionary holds nothing
// personal; records written before (tag 0x01) still read.
func TestLearnedDictionary(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		api := mustCreate(t, e.store, newGate("api", 1, time.Hour)) // no conversation: the fixed dictionary
		if rec := e.rdb.Get(ctx, e.store.gateKey(api.ID)).Val(); rec[0] != '{' && (rec[0] != tagDeflateV2 || binary.BigEndian.Uint32([]byte(rec[1:5])) != 0) {
			t.Errorf("gate without a conversation stored with header %q", rec[:min(5, len(rec))])
		}
		if e.rdb.Exists(ctx, e.store.dictPointerKey()).Val() != 0 {
			t.Fatalf("a gate without a conversation taught a dictionary")
		}
		first := mustCreate(t, e.store, memoryGate(1))
		second := mustCreate(t, e.store, memoryGate(2))
		id, _ := e.rdb.Get(ctx, e.store.dictPointerKey()).Result()
		dict := e.rdb.Get(ctx, e.prefix+"dict:"+id).Val()
		if dict == "" {
			t.Fatalf("no dictionary stored (pointer %q)", id)
		}
		for _, personal := range []string{first.Requester.ID, first.Requester.AADObjectID, first.Requester.UPN,
			first.Requester.Name, first.Message, "1.0.1", first.ID} {
			if strings.Contains(dict, personal) {
				t.Errorf("dictionary holds %q: %s", personal, dict)
			}
		}
		rec := e.rdb.Get(ctx, e.store.gateKey(second.ID)).Val()
		v1, _ := codecV1.encode(second)
		if rec[0] != tagDeflateV2 || binary.BigEndian.Uint32([]byte(rec[1:5])) == 0 || len(rec) > len(v1)*3/4 {
			t.Errorf("record %d bytes with header %x, v1 would be %d", len(rec), rec[:5], len(v1))
		}
		// A replica that has not met the dictionary reads every record.
		other, err := NewStore(e.rdb, e.store.opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []*Gate{api, first, second} {
			got, err := other.Get(ctx, want.ID)
			if err != nil {
				t.Fatalf("other store: %v", err)
			}
			if diff := cmp.Diff(roundTrip(t, want), got); diff != "" {
				t.Errorf("other store read %s (-want +got):\n%s", want.ID, diff)
			}
		}
		// It writes with the same dictionary rather than learning its own.
		third := mustCreate(t, other, memoryGate(3))
		if rec := e.rdb.Get(ctx, e.store.gateKey(third.ID)).Val(); rec[1:5] != e.rdb.Get(ctx, e.store.gateKey(second.ID)).Val()[1:5] {
			t.Errorf("second store wrote with another dictionary")
		}
		// A record written by layout 2 reads.
		old := memoryGate(4)
		old.ID, old.State, old.Version = "g_layout2xxxxxxxxxxxx", StatePending, 1
		raw, _ := codecV1.encode(old)
		e.rdb.Set(ctx, e.store.gateKey(old.ID), raw, 0)
		if got, err := other.Get(ctx, old.ID); err != nil || got.Requester != old.Requester {
			t.Errorf("layout-2 record: %v", err)
		}
	})
}

// TestLearnedDictionaryLost: a deleted dictionary is restored, same id and
// content, by a store that uses it; records naming a dictionary nobody
// has are reported corrupt, not unavailable.
func TestLearnedDictionaryLost(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, memoryGate(1))
		id := e.rdb.Get(ctx, e.store.dictPointerKey()).Val()
		key := e.prefix + "dict:" + id
		content := e.rdb.Get(ctx, key).Val()
		e.rdb.Del(ctx, key)
		e.store.dicts.checked = time.Time{} // as after dictRecheck
		mustCreate(t, e.store, memoryGate(2))
		if got := e.rdb.Get(ctx, key).Val(); got != content {
			t.Fatalf("dictionary not restored: %q", got)
		}
		e.rdb.Del(ctx, key)
		fresh, _ := NewStore(e.rdb, e.store.opts)
		if _, err := fresh.Get(ctx, g.ID); !errors.Is(err, errCorrupt) || errors.Is(err, ErrUnavailable) {
			t.Errorf("record with a lost dictionary: %v, want a corrupt record", err)
		}
	})
}

// roundTrip is g as a JSON round trip gives it back (numbers as float64).
func roundTrip(t *testing.T, g *Gate) *Gate {
	t.Helper()
	rec, err := codecV2.encode(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := codecV2.decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDictTemplateScrubbed: the requester's identifiers leave the
// template's conversation reference however JSON escapes them, and what
// the deployment shares stays.
func TestDictTemplateScrubbed(t *testing.T) {
	g := memoryGate(7)
	g.Requester.Name = "Zoë <O'Brien>"
	g.Post.Conversation = []byte(`{"user":{"id":"` + g.Requester.ID + `","name":"Zo\u00eb \u003cO'Brien\u003e","aadObjectId":"` +
		strings.ToUpper(g.Requester.AADObjectID) + `"},"bot":{"id":"28:bot"},"conversation":{"tenantId":"tenant-1"}}`)
	tmpl := dictTemplate(g)
	raw, _ := json.Marshal(tmpl)
	for _, personal := range []string{g.Requester.ID, "Zo", "Brien", g.Requester.AADObjectID, strings.ToUpper(g.Requester.AADObjectID), g.Message} {
		if strings.Contains(string(raw), personal) {
			t.Errorf("template holds %q: %s", personal, raw)
		}
	}
	for _, shared := range []string{"28:bot", "tenant-1", g.Pipeline, g.Conversations[0], g.Policy.Approvers[0]} {
		if !strings.Contains(string(raw), shared) {
			t.Errorf("template lost %q: %s", shared, raw)
		}
	}
}

// TestLearnedDictionaryRace: stores learning at the same moment agree on
// one dictionary and leave no other behind.
func TestLearnedDictionaryRace(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		var wg sync.WaitGroup
		for i := range 8 {
			s, _ := NewStore(e.rdb, e.store.opts) // a replica each
			wg.Go(func() {
				for j := range 4 {
					mustCreate(t, s, memoryGate(i*4+j))
				}
			})
		}
		wg.Wait()
		dicts, err := e.store.scanKeys(ctx, globEscape(e.prefix)+"dict:*")
		if err != nil {
			t.Fatal(err)
		}
		if len(dicts) != 1 || dicts[0] != e.prefix+"dict:"+e.rdb.Get(ctx, e.store.dictPointerKey()).Val() {
			t.Errorf("dictionaries %v, pointer %q", dicts, e.rdb.Get(ctx, e.store.dictPointerKey()).Val())
		}
	})
}
