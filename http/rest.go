package http

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/metastore/metastore/mvcc"
)

// The REST API for plain HTTP clients (docs/http-api.md):
//
//	GET    /v1/kv/{key}                 raw value; 404 when absent
//	GET    /v1/kv/{prefix}?prefix=true  JSON listing
//	PUT    /v1/kv/{key}                 raw body; If-Match / If-None-Match
//	DELETE /v1/kv/{key}[?prefix=true]   If-Match for a single key
//
// {key} is the rest of the raw path, percent-decoded, so a key may hold any
// bytes. The single-key GET and the unconditional PUT are the hot paths:
// they parse, call the server and answer without allocating (requests and
// buffers come from restPool; headers and body go into fasthttp's reused
// buffers), which TestREST_*Allocs guards.

// restState is the per-request scratch of the REST handlers.
type restState struct {
	key     []byte
	end     []byte
	scratch []byte
	rr      pb.RangeRequest
	pr      pb.PutRequest
	dr      pb.DeleteRangeRequest
	// ctx is the request's context into the server (auth.go).
	ctx context.Context
}

var restPool = sync.Pool{New: func() any {
	return &restState{key: make([]byte, 0, 256), end: make([]byte, 0, 256), scratch: make([]byte, 0, 64)}
}}

func getRestState() *restState { return restPool.Get().(*restState) }

func putRestState(st *restState) {
	// Drop references into the request and the server's reply.
	st.rr.Reset()
	st.pr.Reset()
	st.dr.Reset()
	if cap(st.key) > 64<<10 || cap(st.end) > 64<<10 {
		return
	}
	restPool.Put(st)
}

// Header names, as []byte so that setting them does not allocate.
var (
	hdrRevision       = []byte("X-Revision")
	hdrCreateRevision = []byte("X-Create-Revision")
	hdrModRevision    = []byte("X-Mod-Revision")
	hdrVersion        = []byte("X-Version")
	hdrLease          = []byte("X-Lease")
	hdrETag           = []byte("Etag") // fasthttp's canonical form of ETag: SetCanonical stores it as given
)

func (h *Handler) rest(ctx *fasthttp.RequestCtx) {
	st := getRestState()
	defer putRestState(st)
	raw := ctx.URI().PathOriginal()[len(restKVPrefix):]
	var ok bool
	if st.key, ok = unescapePath(st.key[:0], raw); !ok {
		writeError(ctx, badRequest("malformed percent-encoding in the key"))
		return
	}
	if st.ctx, ok = h.requestContext(ctx); !ok { // auth.go
		return
	}
	switch {
	case ctx.IsGet(), ctx.IsHead():
		h.restGet(ctx, st)
	case ctx.IsPut():
		h.restPut(ctx, st)
	case ctx.IsDelete():
		h.restDelete(ctx, st)
	}
}

// boolArg reads a flag: absent or "false"/"0" is false; "true", "1" or a
// bare name is true; anything else is the client's mistake.
func boolArg(args *fasthttp.Args, name string) (v, ok bool) {
	if !args.Has(name) {
		return false, true
	}
	switch string(args.Peek(name)) {
	case "", "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

func intArg(args *fasthttp.Args, name string) (int64, bool) {
	b := args.Peek(name)
	if len(b) == 0 {
		return 0, true
	}
	return parseInt64(b)
}

// restQuery is the parsed query of a GET.
type restQuery struct {
	prefix, serializable, keysOnly, base64 bool
	rev, limit                             int64
}

func parseRestQuery(args *fasthttp.Args) (q restQuery, bad string) {
	var ok bool
	if q.prefix, ok = boolArg(args, "prefix"); !ok {
		return q, "prefix must be true or false"
	}
	if q.serializable, ok = boolArg(args, "serializable"); !ok {
		return q, "serializable must be true or false"
	}
	if q.keysOnly, ok = boolArg(args, "keys_only"); !ok {
		return q, "keys_only must be true or false"
	}
	if q.rev, ok = intArg(args, "rev"); !ok {
		return q, "rev must be a non-negative integer"
	}
	if q.limit, ok = intArg(args, "limit"); !ok {
		return q, "limit must be a non-negative integer"
	}
	switch string(args.Peek("encoding")) {
	case "", "auto":
	case "base64":
		q.base64 = true
	default:
		return q, "encoding must be auto or base64"
	}
	return q, ""
}

func (h *Handler) restGet(ctx *fasthttp.RequestCtx, st *restState) {
	q, bad := parseRestQuery(ctx.QueryArgs())
	if bad != "" {
		writeError(ctx, badRequest(bad))
		return
	}
	if q.prefix {
		h.restList(ctx, st, q)
		return
	}
	if len(st.key) == 0 {
		writeError(ctx, toAPIError(mvcc.ErrEmptyKey))
		return
	}
	st.rr.Key = st.key
	st.rr.Revision = q.rev
	st.rr.Serializable = q.serializable
	resp, err := h.kv.Range(st.ctx, &st.rr)
	if err != nil {
		writeError(ctx, toAPIError(err))
		return
	}
	h.setRevision(ctx, st, resp.GetHeader().GetRevision())
	if len(resp.Kvs) == 0 {
		writeError(ctx, errKeyNotFound)
		return
	}
	kv := resp.Kvs[0]
	setKVHeaders(ctx, st, kv)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentBinary)
	ctx.SetBody(kv.Value)
}

func (h *Handler) setRevision(ctx *fasthttp.RequestCtx, st *restState, rev int64) {
	st.scratch = strconv.AppendInt(st.scratch[:0], rev, 10)
	ctx.Response.Header.SetCanonical(hdrRevision, st.scratch)
}

// setKVHeaders describes one key: ETag is its mod revision (quoted, as HTTP
// wants entity tags), the rest as X- headers.
func setKVHeaders(ctx *fasthttp.RequestCtx, st *restState, kv *mvccpb.KeyValue) {
	hd := &ctx.Response.Header
	st.scratch = appendQuotedInt(st.scratch[:0], kv.ModRevision)
	hd.SetCanonical(hdrETag, st.scratch)
	st.scratch = strconv.AppendInt(st.scratch[:0], kv.ModRevision, 10)
	hd.SetCanonical(hdrModRevision, st.scratch)
	st.scratch = strconv.AppendInt(st.scratch[:0], kv.CreateRevision, 10)
	hd.SetCanonical(hdrCreateRevision, st.scratch)
	st.scratch = strconv.AppendInt(st.scratch[:0], kv.Version, 10)
	hd.SetCanonical(hdrVersion, st.scratch)
	if kv.Lease != 0 {
		st.scratch = strconv.AppendUint(st.scratch[:0], uint64(kv.Lease), 16)
		hd.SetCanonical(hdrLease, st.scratch)
	}
}

// restList answers a prefix listing:
//
//	{"revision":N,"count":N,"more":false,"kvs":[{"key":"a","create_revision":N,
//	 "mod_revision":N,"version":N,"value":"x","lease":"hex"},...]}
//
// A key or value that is valid UTF-8 is a JSON string under "key"/"value";
// otherwise it is base64 under "key_base64"/"value_base64" (always, with
// ?encoding=base64). Revisions are JSON numbers; a lease is hex, as etcdctl
// prints it, and absent when there is none.
func (h *Handler) restList(ctx *fasthttp.RequestCtx, st *restState, q restQuery) {
	if len(st.key) == 0 {
		// Every key: etcd's "\x00" to "\x00".
		st.key = append(st.key[:0], 0)
		st.end = append(st.end[:0], 0)
	} else {
		st.end = prefixEnd(st.end, st.key)
	}
	st.rr.Key, st.rr.RangeEnd = st.key, st.end
	st.rr.Revision, st.rr.Limit = q.rev, q.limit
	st.rr.Serializable, st.rr.KeysOnly = q.serializable, q.keysOnly
	resp, err := h.kv.Range(st.ctx, &st.rr)
	if err != nil {
		writeError(ctx, toAPIError(err))
		return
	}
	rev := resp.GetHeader().GetRevision()
	h.setRevision(ctx, st, rev)
	b := getBuf()
	defer putBuf(b)
	buf := append((*b)[:0], `{"revision":`...)
	buf = strconv.AppendInt(buf, rev, 10)
	buf = append(buf, `,"count":`...)
	buf = strconv.AppendInt(buf, resp.Count, 10)
	buf = append(buf, `,"more":`...)
	buf = strconv.AppendBool(buf, resp.More)
	buf = append(buf, `,"kvs":[`...)
	for i, kv := range resp.Kvs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendKV(buf, kv, q.keysOnly, q.base64)
	}
	buf = append(buf, "]}\n"...)
	*b = buf
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(buf)
}

func appendKV(buf []byte, kv *mvccpb.KeyValue, keysOnly, forceBase64 bool) []byte {
	buf = append(buf, '{')
	buf = appendBytesField(buf, "key", kv.Key, forceBase64)
	buf = append(buf, `,"create_revision":`...)
	buf = strconv.AppendInt(buf, kv.CreateRevision, 10)
	buf = append(buf, `,"mod_revision":`...)
	buf = strconv.AppendInt(buf, kv.ModRevision, 10)
	buf = append(buf, `,"version":`...)
	buf = strconv.AppendInt(buf, kv.Version, 10)
	if !keysOnly {
		buf = append(buf, ',')
		buf = appendBytesField(buf, "value", kv.Value, forceBase64)
	}
	if kv.Lease != 0 {
		buf = append(buf, `,"lease":"`...)
		buf = strconv.AppendUint(buf, uint64(kv.Lease), 16)
		buf = append(buf, '"')
	}
	return append(buf, '}')
}

func appendBytesField(buf []byte, name string, v []byte, forceBase64 bool) []byte {
	buf = append(buf, '"')
	buf = append(buf, name...)
	if forceBase64 || !utf8.Valid(v) {
		buf = append(buf, `_base64":`...)
		return appendBase64(buf, v)
	}
	buf = append(buf, `":`...)
	return appendJSONString(buf, v)
}

// condition is a parsed If-Match / If-None-Match header.
type condition struct {
	set     bool
	cmp     *pb.Compare
	explain string
}

// parseCondition reads If-Match (a mod revision, quoted or not, or "*": the
// key exists) and If-None-Match ("*": the key does not exist).
func parseCondition(ctx *fasthttp.RequestCtx, key []byte) (condition, string) {
	var c condition
	im := bytes.TrimSpace(ctx.Request.Header.Peek("If-Match"))
	inm := bytes.TrimSpace(ctx.Request.Header.Peek("If-None-Match"))
	switch {
	case len(im) > 0 && len(inm) > 0:
		return c, "use either If-Match or If-None-Match, not both"
	case len(inm) > 0:
		if string(inm) != "*" {
			return c, `If-None-Match supports only "*" (create if absent)`
		}
		c.set, c.explain = true, "the key exists"
		c.cmp = &pb.Compare{Key: key, Target: pb.Compare_CREATE, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 0}}
	case len(im) > 0:
		if string(im) == "*" {
			c.set, c.explain = true, "the key does not exist"
			c.cmp = &pb.Compare{Key: key, Target: pb.Compare_CREATE, Result: pb.Compare_GREATER,
				TargetUnion: &pb.Compare_CreateRevision{CreateRevision: 0}}
			break
		}
		v := im
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		rev, ok := parseInt64(v)
		if !ok {
			return c, `If-Match must be a mod revision (an ETag such as "5") or "*"`
		}
		c.set, c.explain = true, "the key's mod revision is not "+string(v)
		c.cmp = &pb.Compare{Key: key, Target: pb.Compare_MOD, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_ModRevision{ModRevision: rev}}
	}
	return c, ""
}

func (h *Handler) restPut(ctx *fasthttp.RequestCtx, st *restState) {
	if len(st.key) == 0 {
		writeError(ctx, toAPIError(mvcc.ErrEmptyKey))
		return
	}
	body := ctx.PostBody()
	// etcd's size check counts the request message; key + value is its bulk.
	if len(body)+len(st.key) > h.cfg.MaxRequestBytes {
		writeError(ctx, errBodyTooLarge)
		return
	}
	args := ctx.QueryArgs()
	var lease int64
	if b := args.Peek("lease"); len(b) > 0 {
		var ok bool
		if lease, ok = parseHex64(b); !ok {
			writeError(ctx, badRequest("lease must be a lease ID in hexadecimal"))
			return
		}
	}
	st.pr.Key, st.pr.Value, st.pr.Lease = st.key, body, lease
	cond, bad := parseCondition(ctx, st.key)
	if bad != "" {
		writeError(ctx, badRequest(bad))
		return
	}
	var rev int64
	if cond.set {
		resp := h.condTxn(ctx, st, &cond, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &st.pr}})
		if resp == nil {
			return
		}
		rev = resp.GetHeader().GetRevision()
	} else {
		resp, err := h.kv.Put(st.ctx, &st.pr)
		if err != nil {
			writeError(ctx, toAPIError(err))
			return
		}
		rev = resp.GetHeader().GetRevision()
	}
	h.setRevision(ctx, st, rev)
	st.scratch = appendQuotedInt(st.scratch[:0], rev)
	ctx.Response.Header.SetCanonical(hdrETag, st.scratch)
	h.writeRevisionBody(ctx, st, rev, -1)
}

// writeRevisionBody answers {"revision":N} (and "deleted" when >= 0).
func (h *Handler) writeRevisionBody(ctx *fasthttp.RequestCtx, st *restState, rev, deleted int64) {
	buf := append(st.scratch[:0], `{"revision":`...)
	buf = strconv.AppendInt(buf, rev, 10)
	if deleted >= 0 {
		buf = append(buf, `,"deleted":`...)
		buf = strconv.AppendInt(buf, deleted, 10)
	}
	buf = append(buf, "}\n"...)
	st.scratch = buf
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(contentJSON)
	ctx.SetBody(buf)
}

// condTxn runs op if cond holds, as one txn; when it does not, it answers
// 412 with the key's current ETag (if the key exists) and returns nil.
func (h *Handler) condTxn(ctx *fasthttp.RequestCtx, st *restState, cond *condition, op *pb.RequestOp) *pb.TxnResponse {
	txn := &pb.TxnRequest{
		Compare: []*pb.Compare{cond.cmp},
		Success: []*pb.RequestOp{op},
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: st.key, KeysOnly: true}}}},
	}
	if err := h.checkTxn(txn); err != nil {
		writeError(ctx, toAPIError(err))
		return nil
	}
	resp, err := h.kv.Txn(st.ctx, txn)
	if err != nil {
		writeError(ctx, toAPIError(err))
		return nil
	}
	if resp.Succeeded {
		return resp
	}
	h.setRevision(ctx, st, resp.GetHeader().GetRevision())
	if len(resp.Responses) == 1 {
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) == 1 {
			setKVHeaders(ctx, st, kvs[0])
		}
	}
	writeError(ctx, preconditionFailed("precondition failed: "+cond.explain))
	return nil
}

func (h *Handler) restDelete(ctx *fasthttp.RequestCtx, st *restState) {
	prefix, ok := boolArg(ctx.QueryArgs(), "prefix")
	if !ok {
		writeError(ctx, badRequest("prefix must be true or false"))
		return
	}
	cond, bad := parseCondition(ctx, st.key)
	switch {
	case bad != "":
		writeError(ctx, badRequest(bad))
		return
	case cond.set && prefix:
		writeError(ctx, badRequest("If-Match applies to a single key, not a prefix"))
		return
	case cond.set && cond.cmp.Target == pb.Compare_CREATE && cond.cmp.Result == pb.Compare_EQUAL:
		writeError(ctx, badRequest("If-None-Match is for PUT (create if absent); DELETE takes If-Match"))
		return
	case len(st.key) == 0 && !prefix:
		writeError(ctx, toAPIError(mvcc.ErrEmptyKey))
		return
	}
	st.dr.Key = st.key
	if prefix {
		if len(st.key) == 0 {
			st.key = append(st.key[:0], 0)
			st.end = append(st.end[:0], 0)
			st.dr.Key = st.key
		} else {
			st.end = prefixEnd(st.end, st.key)
		}
		st.dr.RangeEnd = st.end
	}
	if err := mvcc.CheckDeleteRange(&st.dr); err != nil {
		writeError(ctx, toAPIError(err))
		return
	}
	var rev, deleted int64
	if cond.set {
		resp := h.condTxn(ctx, st, &cond, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &st.dr}})
		if resp == nil {
			return
		}
		rev = resp.GetHeader().GetRevision()
		if len(resp.Responses) == 1 {
			deleted = resp.Responses[0].GetResponseDeleteRange().GetDeleted()
		}
	} else {
		resp, err := h.kv.DeleteRange(st.ctx, &st.dr)
		if err != nil {
			writeError(ctx, toAPIError(err))
			return
		}
		rev, deleted = resp.GetHeader().GetRevision(), resp.Deleted
	}
	h.setRevision(ctx, st, rev)
	if deleted == 0 && !prefix {
		writeError(ctx, errKeyNotFound)
		return
	}
	h.writeRevisionBody(ctx, st, rev, deleted)
}
