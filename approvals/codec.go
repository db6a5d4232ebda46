package approvals

import (
	"bytes"
	"context"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Gate records are JSON. Teams identifiers make a typical record about
// 1.2-1.8 KB, above the 1 KiB target, so records above compressMin bytes
// are stored as raw DEFLATE of the JSON with a preset dictionary of the
// record's own field names and Teams' fixed strings, behind a one-byte tag.
// A record starting with '{' is plain JSON. The dictionary is part of the
// storage format: never edit it, add a new tag instead.
// errCorrupt marks a stored record that does not decode: retrying cannot
// help, and Redis is not to blame.
var errCorrupt = errors.New("corrupt gate record")

const (
	tagDeflateV1 = 0x01
	compressMin  = 256
)

// gateDictV1 holds strings common in records; the most frequent last, where
// DEFLATE reaches them with the shortest distances.
const gateDictV1 = `"personal","groupChat","amer/","apac/","triggering","trigger_failed","succeeded","failed",` +
	`"rejected","expired","cancelled","approved","running","api:",` +
	`{"id":"g_","pl":"","in":{},"msg":"","rq":{"id":"29:1","aad":"","upn":"@","name":""},"org":"teams",` +
	`"pol":{"req":2,"apv":["aad:"],"ttl":3600000000000,"self":true},"st":"pending",` +
	`"v":[{"by":{"id":"29:1","aad":"","upn":"","name":""},"ok":true,"why":"","at":"2026-01-01T00:00:00.000Z"}],` +
	`"ca":"2026-","dl":"2026-","ua":"2026-","db":{},"why":"","run":{"id":"","url":"https://","st":"","dt":"","ref":{}},` +
	`"err":"","att":1,"post":{"conv":{"activityId":"","bot":{"id":"28:","name":""},"channelId":"msteams",` +
	`"conversation":{"conversationType":"channel","id":"19:@thread.tacv2;messageid=","isGroup":true,"tenantId":""},` +
	`"locale":"en-US","serviceUrl":"https://smba.trafficmanager.net/emea/",` +
	`"user":{"aadObjectId":"","id":"29:1","name":""}},"act":""},"cb":"","lbl":{},"ver":1}`

// recordCodec encodes gate records, pooling the compressors, whose state
// is large to allocate.
type recordCodec struct {
	writers sync.Pool // *flate.Writer
	readers sync.Pool // io.ReadCloser implementing flate.Resetter
}

func (c *recordCodec) encode(g *Gate) ([]byte, error) {
	raw, err := json.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("encode gate: %w", err)
	}
	if len(raw) < compressMin {
		return raw, nil
	}
	var buf bytes.Buffer
	buf.Grow(len(raw)/2 + 16)
	buf.WriteByte(tagDeflateV1)
	w, _ := c.writers.Get().(*flate.Writer)
	if w == nil {
		// Only an invalid level makes NewWriterDict fail.
		w, _ = flate.NewWriterDict(&buf, flate.DefaultCompression, []byte(gateDictV1))
	} else {
		w.Reset(&buf)
	}
	defer c.writers.Put(w)
	if _, err := w.Write(raw); err != nil {
		return nil, fmt.Errorf("compress gate: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compress gate: %w", err)
	}
	if buf.Len() >= len(raw) {
		return raw, nil
	}
	return buf.Bytes(), nil
}

func (c *recordCodec) decode(rec []byte) (*Gate, error) {
	g, err := c.decodeRaw(rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return g, nil
}

func (c *recordCodec) decodeRaw(rec []byte) (*Gate, error) {
	if len(rec) == 0 {
		return nil, errors.New("decode gate: empty record")
	}
	raw := rec
	switch rec[0] {
	case '{':
	case tagDeflateV1:
		r, _ := c.readers.Get().(io.ReadCloser)
		if r == nil {
			r = flate.NewReaderDict(bytes.NewReader(rec[1:]), []byte(gateDictV1))
		} else if err := r.(flate.Resetter).Reset(bytes.NewReader(rec[1:]), []byte(gateDictV1)); err != nil {
			return nil, fmt.Errorf("decompress gate: %w", err)
		}
		var err error
		raw, err = io.ReadAll(r)
		c.readers.Put(r)
		if err != nil {
			return nil, fmt.Errorf("decompress gate: %w", err)
		}
	default:
		return nil, fmt.Errorf("decode gate: unknown record tag %#x", rec[0])
	}
	var g Gate
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, fmt.Errorf("decode gate: %w", err)
	}
	return &g, nil
}

// encodeGate is g's record as stored.
func (s *Store) encodeGate(_ context.Context, g *Gate) ([]byte, error) { return s.codec.encode(g) }

// decodeGate reads a stored record.
func (s *Store) decodeGate(_ context.Context, rec []byte) (*Gate, error) { return s.codec.decode(rec) }
