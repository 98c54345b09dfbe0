// Package migrate brings data from etcd into MetaStore: it reads an etcd v3
// snapshot (the bbolt file `etcdctl snapshot save` writes, or a stopped
// member's member/snap/db) and writes its keyspace and leases into an empty
// engine through mvcc.Importer and lease.ImportRecord. `metastore migrate`
// (cmd_migrate.go) runs it inside server.ImportDataDir, so that the result
// is a data directory from which `metastore serve` bootstraps a new cluster
// holding the data.
//
// # What is kept
//
// Every key version the file holds, with its create and mod revision,
// version, lease and value; the current revision; the compaction revision
// (reads below it fail with ErrCompacted, as they did in etcd); the history
// between the compaction and the current revision (historical reads and
// watches from those revisions work); and every lease with its granted TTL
// and checkpointed remaining TTL (the new leader restarts each lease's
// clock, as etcd does after a restore). A compaction etcd had scheduled but
// not finished is finished by the new member. etcd 3.7 keeps a tombstone at
// the compaction revision, so that a watch from there sees the delete; it
// is imported as it is, and the delete replays from there here too.
//
// Auth: every user (with its bcrypt password hash, so the same password
// logs in, and its roles), every role with its key permissions, and
// whether auth is enabled, replayed through auth.Store's apply methods
// (auth.go); only the auth revision restarts.
//
// Not kept: the cluster's membership, IDs and raft state (the new cluster
// takes them from the serve flags) and alarms.
//
// # etcd's file layout (server/storage/schema, server/storage/mvcc)
//
//	bucket "key":   bigEndian(main) '_' bigEndian(sub) ['t']  ->  mvccpb.KeyValue
//	                ('t' marks a tombstone, whose KeyValue holds only the key)
//	bucket "lease": bigEndian(id)  ->  leasepb.Lease{ID=1, TTL=2, RemainingTTL=3}
//	bucket "meta":  "finishedCompactRev", "scheduledCompactRev"  ->  a 17-byte
//	                revision as above; "consistent_index"  ->  bigEndian uint64
//	buckets "auth", "authUsers", "authRoles": see auth.go
//
// The key bucket is ordered by revision, which is the order mvcc.Importer
// takes. leasepb lives in etcd's server module, which MetaStore does not
// import; its three varint fields are decoded with protowire.
//
// # Checks
//
// A file that etcdctl saved ends with the SHA-256 of the database (its size
// is then 512*k+32 bytes), which is verified as `etcdutl snapshot restore`
// does; a plain database file has none. A file that is not a bbolt
// database, lacks the key or meta bucket, or holds a record that does not
// decode is refused at Open, with an error naming the record, before
// anything is written. What only the import sees (a key written twice in
// one revision, a create revision above the mod revision) fails it, and
// the caller throws the partial result away.
package migrate
