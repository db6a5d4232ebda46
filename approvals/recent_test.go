package approvals

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fill sets every field reachable from v to a non-zero value, maps and
// slices with one element, so that a clone missing a field shows.
func fill(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", depth))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(depth + 1))
	case reflect.Uint8:
		v.SetUint(uint64('a' + depth))
	case reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), depth+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), depth+1)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, depth+1)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Interface:
		// Inputs as JSON decodes them: a nested object and array.
		v.Set(reflect.ValueOf(map[string]any{"list": []any{"x", map[string]any{"k": "v"}}}))
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.UnixMilli(int64(depth) * 1000).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

// shared reports the first map, slice or pointer a and b share.
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if !a.IsNil() && a.UnsafePointer() == b.UnsafePointer() {
			return path
		}
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() {
			return ""
		}
		return shared(a.Elem(), b.Elem(), path)
	case reflect.Slice:
		for i := range a.Len() {
			if p := shared(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	case reflect.Map:
		for _, k := range a.MapKeys() {
			if p := shared(a.MapIndex(k), b.MapIndex(k), fmt.Sprintf("%s[%v]", path, k)); p != "" {
				return p
			}
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

func TestCloneSharesNothing(t *testing.T) {
	t.Parallel()
	var g Gate
	fill(reflect.ValueOf(&g).Elem(), 0)
	c := g.clone()
	if !reflect.DeepEqual(&g, c) {
		t.Fatalf("clone differs:\n%#v\n%#v", g, *c)
	}
	if p := shared(reflect.ValueOf(&g).Elem(), reflect.ValueOf(c).Elem(), "Gate"); p != "" {
		t.Fatalf("clone shares %s with the original: add it to Gate.clone", p)
	}
}

// TestRememberedRecordSparesTheRead: a gate this Store wrote last is
// changed with one round trip, and one another writer changed meanwhile is
// decided again on what that writer stored, losing neither change.
func TestRememberedRecordSparesTheRead(t *testing.T) {
	t.Parallel()
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy", 2, time.Hour))
		other := otherReplica(t, e)
		if err := casScript.Load(ctx, e.rdb).Err(); err != nil {
			t.Fatal(err)
		}
		var calls []string
		e.rdb.AddHook(commandNames(&calls))
		if _, _, err := e.store.Decide(ctx, g.ID, bob, true, "", ""); err != nil {
			t.Fatalf("Decide: %v", err)
		}
		if want := []string{"evalsha"}; !slices.Equal(calls, want) {
			t.Errorf("a remembered gate: commands %v, want %v", calls, want)
		}
		// Another replica's vote makes this Store's record stale.
		if _, _, err := other.Decide(ctx, g.ID, carol, false, "not now", ""); err != nil {
			t.Fatalf("other Decide: %v", err)
		}
		calls = calls[:0]
		got, err := e.store.updateWith(ctx, g.ID, func(g *Gate) error {
			g.Labels = map[string]string{"seen": fmt.Sprint(len(g.Votes))}
			return nil
		})
		if err != nil {
			t.Fatalf("update on a stale record: %v", err)
		}
		if got.State != StateRejected || got.Labels["seen"] != "2" {
			t.Errorf("after a stale record: state %s, votes seen %s; want rejected, 2", got.State, got.Labels["seen"])
		}
		if want := []string{"evalsha", "evalsha"}; !slices.Equal(calls, want) {
			t.Errorf("a stale record: commands %v, want %v (the script answers with the record stored)", calls, want)
		}
		stored, err := other.Get(ctx, g.ID)
		if err != nil || stored.Labels["seen"] != "2" || len(stored.Votes) != 2 {
			t.Errorf("stored: %+v, %v", stored, err)
		}
	})
}

// TestRefusalOnARememberedRecordIsChecked: a change refused on a
// remembered record is refused only if the record is still the one stored;
// otherwise it is decided on the stored one.
func TestRefusalOnARememberedRecordIsChecked(t *testing.T) {
	t.Parallel()
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy", 1, time.Hour))
		other := otherReplica(t, e)
		if _, err := other.Cancel(ctx, g.ID, dave, "wrong version"); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		// This Store still remembers the gate pending: its vote must see
		// the cancellation, not approve.
		got, _, err := e.store.Decide(ctx, g.ID, bob, true, "", "")
		if !errors.Is(err, ErrNotPending) || got == nil || got.State != StateCancelled {
			t.Fatalf("vote on a gate cancelled elsewhere: %v, %+v; want ErrNotPending on the cancelled gate", err, got)
		}
	})
}

// TestCompareAndSetRefusesUnknownCommands: a change queueing a command
// whose key is not its first argument fails loudly rather than writing
// outside the script's declared keys.
func TestCompareAndSetRefusesUnknownCommands(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	p := rdb.Pipeline()
	p.ZAdd(context.Background(), "k", redis.Z{Score: 1, Member: "m"})
	p.Eval(context.Background(), "return 1", []string{"a"})
	_, _, err := casArgs("g", "rec", p)
	if !errors.Is(err, errNotCAS) || !strings.Contains(err.Error(), "eval") {
		t.Fatalf("casArgs with EVAL: %v, want an error naming it", err)
	}
}

// commandHook records the names of the commands a client sends, a
// pipeline's one by one.
type commandHook struct {
	mu    *sync.Mutex
	names *[]string
}

func commandNames(names *[]string) redis.Hook { return commandHook{mu: &sync.Mutex{}, names: names} }

func (h commandHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h commandHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		*h.names = append(*h.names, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h commandHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.mu.Lock()
		for _, c := range cmds {
			*h.names = append(*h.names, c.Name())
		}
		h.mu.Unlock()
		return next(ctx, cmds)
	}
}

// TestGatesHandedOutAreTheCallers: changing a gate Get or a change
// returned (as handlers do when they resolve approvers) changes nothing
// the Store remembers.
func TestGatesHandedOutAreTheCallers(t *testing.T) {
	t.Parallel()
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy", 2, time.Hour))
		scribble := func(g *Gate) {
			g.Inputs["version"] = "scribbled"
			g.Policy.Approvers = append(g.Policy.Approvers, "mallory@example.com")
			g.Message = "scribbled"
		}
		got, err := e.store.Get(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		scribble(got)
		decided, _, err := e.store.Decide(ctx, g.ID, bob, true, "", "")
		if err != nil {
			t.Fatal(err)
		}
		scribble(decided)
		again, err := e.store.Get(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if again.Inputs["version"] != "1.4.2" || again.Message != "ship it" || len(again.Policy.Approvers) != 0 || len(again.Votes) != 1 {
			t.Errorf("the Store kept a caller's change: %+v", again)
		}
	})
}

// otherReplica is a second Store on e's keys, as another replica has.
func otherReplica(t *testing.T, e *env) *Store {
	t.Helper()
	other, err := NewStore(e.rdb, Options{Prefix: e.prefix, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return other
}
