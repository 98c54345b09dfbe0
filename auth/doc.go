// Package auth is etcd's v3 authentication and authorization state: users
// with bcrypt password hashes and granted roles, roles with key-range
// permissions (READ, WRITE, READWRITE), the enabled flag, the auth
// revision, and the tokens that name an authenticated user.
//
// Replication. Every change (enable, disable, user and role management,
// and Authenticate, which assigns a token) is a raft request that the
// server applies on every member through the Store's apply methods, which
// write the records into the apply batch's Meta keyspace:
//
//	"auth/enabled"     -> 1 byte (0 or 1)
//	"auth/revision"    -> big-endian uint64
//	"auth/user/<name>" -> authpb.User (protobuf)
//	"auth/role/<name>" -> authpb.Role (protobuf)
//
// so the records commit atomically with the state, travel in raft
// snapshots, and are never visible to Range or Watch (those read the Data
// keyspace only). Load rebuilds the Store from them at start and after a
// snapshot restore.
//
// Apply methods are called by one goroutine (the apply loop); the read and
// check methods may be called from any goroutine. Password hashing is done
// by the proposer (HashPassword) so that the apply path never runs bcrypt;
// CheckPassword (bcrypt compare) is likewise a front-end step before
// Authenticate is proposed.
//
// The auth revision starts at 1 and grows with every change. A client
// request carries the user and the revision at which it was checked
// (RequestHeader's Username and AuthRevision); if the revision moved
// before it is applied, the server checks it again at apply time, as that
// user, against the state then (an AuthInfo with Revision 0 skips the
// staleness test), so a permission revoked between the check and the
// apply cannot be bypassed. Checks of a request that still carries an
// older revision than the store's fail with ErrAuthOldRevision, as etcd's.
// Internal requests (lease expiry, alarms) carry revision 0 and are never
// checked.
//
// Tokens. Simple tokens (the default) are random strings chosen by the
// proposer and assigned at apply on every member; they live in memory
// only, expire after a TTL that each use renews (etcd's
// --auth-token-ttl), and are dropped when auth is disabled or the user's
// password changes or the user is deleted. A restart forgets them:
// clients re-authenticate on ErrInvalidAuthToken, as with etcd. JWT tokens
// (--auth-token jwt,...) are signed and carry the user and auth revision;
// any member holding the public key verifies them.
//
// Layering: auth imports engine (records) and etcd's protobuf types, never
// mvcc or lease.
package auth
