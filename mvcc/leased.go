package mvcc

// LeasedKeys calls fn with every live key that has a lease, at the current
// revision, in key order. The server uses it to re-attach keys to leases
// after the lessor loaded its records (at start and after a snapshot
// restore): the keyspace, not a separate index, is the record of which key
// belongs to which lease. It reads every version of every key once, so it
// costs a full scan of the data keyspace. fn gets its own copy of key.
func (s *Store) LeasedKeys(fn func(key []byte, lease int64)) error {
	var decodeErr error
	err := scanLive(s.eng, nil, nil, s.currentRev.Load(), func(prefix []byte, _ int64, raw []byte) bool {
		v, err := decodeVersion(raw)
		if err != nil {
			decodeErr = err
			return false
		}
		if v.lease == 0 {
			return true
		}
		key, err := unescape(prefix)
		if err != nil {
			decodeErr = err
			return false
		}
		fn(key, v.lease)
		return true
	})
	if err == nil {
		err = decodeErr
	}
	return err
}
