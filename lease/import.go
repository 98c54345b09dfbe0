package lease

import (
	"errors"
	"fmt"

	"github.com/metastore/metastore/engine"
)

// ErrBadImport is wrapped when an imported lease cannot be stored.
var ErrBadImport = errors.New("lease: bad imported lease")

// ImportRecord writes the record of a lease taken from another store (an
// etcd snapshot's lease bucket) through w, in the format Load reads: lease
// id with the granted ttl and the checkpointed remaining TTL (0: none), in
// seconds. Keys are not part of it: as after any Load, the server attaches
// the live keys that carry the lease.
func ImportRecord(w Writer, id, ttl, remaining int64) error {
	switch {
	case id == NoLease:
		return fmt.Errorf("%w: id 0", ErrBadImport)
	case ttl < 1 || ttl > MaxTTL:
		return fmt.Errorf("%w: lease %016x has TTL %d", ErrBadImport, id, ttl)
	case remaining < 0:
		return fmt.Errorf("%w: lease %016x has remaining TTL %d", ErrBadImport, id, remaining)
	}
	// NB: encodeRecord wants l.mu held for a lease of the set; this one is
	// local and never shared.
	w.Put(engine.Meta, recordKey(id), encodeRecord(&lease{ttl: ttl, remaining: remaining}))
	return nil
}
