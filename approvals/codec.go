package approvals

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Gate records are JSON, stored as raw DEFLATE of the JSON with a preset
// dictionary behind a tag byte; a record starting with '{' is plain JSON.
// Teams identifiers make a typical record 1.2-1.8 KB of JSON.
//
//	0x01 <deflate>            dictionary gateDictV1 (layouts 1 and 2)
//	0x02 <id: 4 bytes> <deflate>
//	                          dictionary gateDictV2, followed, unless id is
//	                          0, by the learned dictionary stored under
//	                          P dict:<id> (see dict.go)
//
// Dictionaries are part of the storage format: never edit one, add a new
// tag or id instead.

// errCorrupt marks a stored record that does not decode: retrying cannot
// help, and Redis is not to blame.
var errCorrupt = errors.New("corrupt gate record")

const (
	tagDeflateV1 = 0x01
	tagDeflateV2 = 0x02
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

// gateDictV2 is the fixed part of every tag-0x02 dictionary: the record's
// field names in the order json.Marshal writes them, Bot Framework's
// fixed strings and generic values (states, common input names). It holds
// nothing of any deployment; the learned part does.
const gateDictV2 = `"personal","groupChat","triggering","trigger_failed","succeeded","failed","rejected","expired",` +
	`"cancelled","approved","running","environment":"production","staging","region":"version":"branch":"main","ref":"` +
	`"v":[{"by":{"id":"29:1","aad":"","upn":"@","name":""},"ok":true,"why":"","at":"2026-"}],"db":{},"why":"",` +
	`"run":{"id":"","url":"https://","st":"","dt":"","ref":{}},"err":"","att":1,"tl":"","cp":[],"cb":"https://",` +
	`"lbl":{},"ik":"","tok":"","api:"ttl":3600000000000,"rmd":,"self":true},` +
	`{"id":"g_","pl":"","in":{"":""},"msg":"","rq":{"id":"29:1","aad":"-4","-","upn":"@","name":""},"org":"teams",` +
	`"tn":"-4","cv":["19:@thread.tacv2"],"pol":{"req":2,"apv":["@","aad:-4"],"ttl":3600000000000},"st":"pending",` +
	`"ca":"2026-","dl":"2026-","ua":"2026-","post":{"conv":{"activityId":"","bot":{"id":"28:-4","name":""},` +
	`"channelId":"msteams","conversation":{"conversationType":"channel","id":"19:@thread.tacv2;messageid=",` +
	`"isGroup":true,"tenantId":""},"locale":"en-US","serviceUrl":"https://smba.trafficmanager.net/emea/",` +
	`"user":{"aadObjectId":"-4","id":"29:1","name":""}},"act":"1:","pat":"2026-T:.Z"},"ver":`

// deflateCodec compresses records with one preset dictionary behind a
// header (tag and dictionary id), pooling the compressors, whose state is
// large to allocate.
type deflateCodec struct {
	header  []byte
	dict    []byte
	writers sync.Pool // *flate.Writer
	readers sync.Pool // io.ReadCloser implementing flate.Resetter
}

// recordCodec is the tag-0x01 codec of layouts 1 and 2, which decode
// still reads.
type recordCodec = deflateCodec

// codecV1 and codecV2 are the codecs without a learned dictionary.
var (
	codecV1 = &deflateCodec{header: []byte{tagDeflateV1}, dict: []byte(gateDictV1)}
	codecV2 = newCodecV2(0, nil)
)

// newCodecV2 is the tag-0x02 codec of learned dictionary id (none for 0).
func newCodecV2(id uint32, learned []byte) *deflateCodec {
	h := []byte{tagDeflateV2, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[1:], id)
	return &deflateCodec{header: h, dict: append([]byte(gateDictV2), learned...)}
}

func (c *deflateCodec) dictionary() []byte {
	if c.dict == nil { // the zero recordCodec of tests
		return []byte(gateDictV1)
	}
	return c.dict
}

func (c *deflateCodec) encode(g *Gate) ([]byte, error) {
	raw, err := json.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("encode gate: %w", err)
	}
	if len(raw) < compressMin {
		return raw, nil
	}
	header := c.header
	if header == nil {
		header = []byte{tagDeflateV1}
	}
	var buf bytes.Buffer
	buf.Grow(len(raw)/2 + 16)
	buf.Write(header)
	w, _ := c.writers.Get().(*flate.Writer)
	if w == nil {
		// Only an invalid level makes NewWriterDict fail.
		w, _ = flate.NewWriterDict(&buf, flate.BestCompression, c.dictionary())
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

// inflate decompresses body, which follows this codec's header.
func (c *deflateCodec) inflate(body []byte) ([]byte, error) {
	r, _ := c.readers.Get().(io.ReadCloser)
	if r == nil {
		r = flate.NewReaderDict(bytes.NewReader(body), c.dictionary())
	} else if err := r.(flate.Resetter).Reset(bytes.NewReader(body), c.dictionary()); err != nil {
		return nil, fmt.Errorf("decompress gate: %w", err)
	}
	raw, err := io.ReadAll(r)
	c.readers.Put(r)
	if err != nil {
		return nil, fmt.Errorf("decompress gate: %w", err)
	}
	return raw, nil
}

// decode reads a record of any tag whose dictionary needs no lookup: plain
// JSON, tag 0x01 and tag 0x02 without a learned dictionary.
func (c *deflateCodec) decode(rec []byte) (*Gate, error) {
	return decodeRecord(rec, func(uint32) (*deflateCodec, error) {
		return nil, errors.New("decode gate: record needs a learned dictionary")
	})
}

// decodeRecord reads a record of any tag; learned finds the codec of a
// learned dictionary id.
func decodeRecord(rec []byte, learned func(id uint32) (*deflateCodec, error)) (*Gate, error) {
	g, err := decodeRaw(rec, learned)
	if err != nil && !errors.Is(err, ErrUnavailable) {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return g, err
}

func decodeRaw(rec []byte, learned func(id uint32) (*deflateCodec, error)) (*Gate, error) {
	if len(rec) == 0 {
		return nil, errors.New("decode gate: empty record")
	}
	raw := rec
	var err error
	switch rec[0] {
	case '{':
	case tagDeflateV1:
		raw, err = codecV1.inflate(rec[1:])
	case tagDeflateV2:
		if len(rec) < 5 {
			return nil, errors.New("decode gate: short record")
		}
		c := codecV2
		if id := binary.BigEndian.Uint32(rec[1:5]); id != 0 {
			if c, err = learned(id); err != nil {
				return nil, err
			}
		}
		raw, err = c.inflate(rec[5:])
	default:
		return nil, fmt.Errorf("decode gate: unknown record tag %#x", rec[0])
	}
	if err != nil {
		return nil, err
	}
	var g Gate
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, fmt.Errorf("decode gate: %w", err)
	}
	return &g, nil
}
