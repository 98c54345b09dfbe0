package http

import (
	"encoding/base64"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// Responses are built by appending into pooled buffers and copied into
// fasthttp's (also pooled) response body: after warm-up no handler on the
// REST hot path allocates for its output. Reflection-based JSON is kept to
// the gateway (protojson, which etcd's gateway uses too) and to rare paths.

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

// putBuf returns b to the pool unless it grew past 1 MiB (a huge listing
// must not pin its memory forever).
func putBuf(b *[]byte) {
	if cap(*b) > 1<<20 {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

const (
	contentJSON   = "application/json"
	contentBinary = "application/octet-stream"
	contentText   = "text/plain; charset=utf-8"
)

// writeError answers with e's status and etcd's gateway error body:
// {"code":<gRPC code>,"message":"<etcd's message>"}.
func writeError(ctx *fasthttp.RequestCtx, e apiError) {
	b := getBuf()
	buf := append((*b)[:0], `{"code":`...)
	buf = strconv.AppendInt(buf, int64(e.code), 10)
	buf = append(buf, `,"message":`...)
	buf = appendJSONString(buf, e.message)
	buf = append(buf, "}\n"...)
	ctx.SetStatusCode(e.status)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(buf)
	*b = buf
	putBuf(b)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does; callers that need exact bytes check utf8.Valid
// first and use base64 otherwise.
func appendJSONString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				// Control characters, and <, >, & escaped so that a
				// response is safe to embed in HTML (as encoding/json).
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		// NB: string() of at most 4 bytes that do not escape uses a stack
		// buffer: no allocation for []byte input.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendBase64 appends the standard (padded) base64 of b, as protojson
// encodes bytes fields, inside quotes.
func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendQuotedInt appends v in quotes: an ETag, or an int64 as the gateway
// writes it.
func appendQuotedInt(dst []byte, v int64) []byte {
	dst = append(dst, '"')
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, '"')
}

// parseInt64 parses a decimal int64 without allocating.
func parseInt64(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if v < 0 { // overflow of a 19-digit number
		return 0, false
	}
	return v, true
}

// parseHex64 parses a hexadecimal int64 (a lease ID, as etcdctl prints it).
func parseHex64(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return int64(v), true
}

// unescapePath appends the percent-decoded form of a raw URL path segment to
// dst. '+' stays '+' (it means a space only in query strings).
func unescapePath(dst, p []byte) ([]byte, bool) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' {
			dst = append(dst, c)
			continue
		}
		if i+2 >= len(p) {
			return dst, false
		}
		hi, ok1 := unhex(p[i+1])
		lo, ok2 := unhex(p[i+2])
		if !ok1 || !ok2 {
			return dst, false
		}
		dst = append(dst, hi<<4|lo)
		i += 2
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// prefixEnd is the range end that selects every key starting with key:
// key with its last byte below 0xff incremented (trailing 0xff dropped), or
// "\x00" (to the end of the keyspace) when key is all 0xff, as clientv3's
// GetPrefixRangeEnd.
func prefixEnd(dst, key []byte) []byte {
	dst = append(dst[:0], key...)
	for i := len(dst) - 1; i >= 0; i-- {
		if dst[i] < 0xff {
			dst[i]++
			return dst[:i+1]
		}
	}
	return append(dst[:0], 0)
}
