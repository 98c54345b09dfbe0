package auth

import (
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultTokenTTL is etcd's --auth-token-ttl default (300 s).
const DefaultTokenTTL = 300 * time.Second

// TokenProvider issues and resolves tokens.
type TokenProvider interface {
	// Info resolves a token; rev is the store's current auth revision.
	Info(token string, rev uint64) (*AuthInfo, bool)
	// Assign issues a token for username at apply time; simpleToken is the
	// proposer's choice for providers that NeedsSimpleToken.
	Assign(username, simpleToken string, rev uint64) (string, error)
	// NeedsSimpleToken: the proposer must choose the token.
	NeedsSimpleToken() bool
	Enable()
	Disable()
	// Invalidate drops a user's tokens (deleted, password changed).
	Invalidate(username string)
}

// NewTokenProvider parses etcd's --auth-token value: "simple", or
// "jwt,pub-key=<path>,priv-key=<path>,sign-method=<alg>[,ttl=<duration>]".
// ttl is --auth-token-ttl for simple tokens.
func NewTokenProvider(opts string, ttl time.Duration) (TokenProvider, error) {
	parts := strings.Split(opts, ",")
	switch parts[0] {
	case "", "simple":
		if len(parts) > 1 {
			return nil, fmt.Errorf("%w: simple tokens take no options: %q", ErrInvalidAuthOpts, opts)
		}
		return NewSimpleTokens(ttl), nil
	case "jwt":
		return newJWT(parts[1:])
	}
	return nil, fmt.Errorf("%w: unknown token type %q (simple or jwt)", ErrInvalidAuthOpts, parts[0])
}

// SimpleTokens are etcd's simple tokens: random strings, kept in memory,
// valid for a TTL that each use renews.
type SimpleTokens struct {
	ttl time.Duration
	now func() time.Time

	mu struct {
		sync.Mutex
		enabled bool
		tokens  map[string]simpleToken
		sweep   time.Time
	}
}

type simpleToken struct {
	user     string
	deadline time.Time
}

// NewSimpleTokens returns a simple token provider (ttl 0: DefaultTokenTTL).
func NewSimpleTokens(ttl time.Duration) *SimpleTokens {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	t := &SimpleTokens{ttl: ttl, now: time.Now}
	t.mu.tokens = map[string]simpleToken{}
	return t
}

// GenSimpleToken returns 16 random letters and the request id, as etcd's
// simple tokens look.
func GenSimpleToken(id uint64) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("auth: no randomness: " + err.Error())
	}
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b) + "." + strconv.FormatUint(id, 10)
}

func (t *SimpleTokens) NeedsSimpleToken() bool { return true }

func (t *SimpleTokens) Info(token string, rev uint64) (*AuthInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.mu.enabled {
		return nil, false
	}
	st, ok := t.mu.tokens[token]
	now := t.now()
	if !ok || now.After(st.deadline) {
		delete(t.mu.tokens, token)
		return nil, false
	}
	st.deadline = now.Add(t.ttl)
	t.mu.tokens[token] = st
	return &AuthInfo{Username: st.user, Revision: rev}, true
}

func (t *SimpleTokens) Assign(username, token string, _ uint64) (string, error) {
	if token == "" {
		return "", fmt.Errorf("%w: no simple token in the request", ErrInvalidAuthToken)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	// Expired tokens are dropped lazily: at lookup, and here once per TTL.
	if now.Sub(t.mu.sweep) > t.ttl {
		for k, st := range t.mu.tokens {
			if now.After(st.deadline) {
				delete(t.mu.tokens, k)
			}
		}
		t.mu.sweep = now
	}
	t.mu.tokens[token] = simpleToken{user: username, deadline: now.Add(t.ttl)}
	return token, nil
}

func (t *SimpleTokens) Enable() {
	t.mu.Lock()
	t.mu.enabled = true
	t.mu.Unlock()
}

func (t *SimpleTokens) Disable() {
	t.mu.Lock()
	t.mu.enabled = false
	t.mu.tokens = map[string]simpleToken{}
	t.mu.Unlock()
}

func (t *SimpleTokens) Invalidate(username string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, st := range t.mu.tokens {
		if st.user == username {
			delete(t.mu.tokens, k)
		}
	}
}

// jwtTokens are etcd's JWT tokens: claims username, revision and exp,
// signed with the private key (or an HMAC secret) and verified with the
// public key, so that any member with the key accepts a token another
// member issued. A member with only a public key verifies but cannot
// issue.
type jwtTokens struct {
	method  jwt.SigningMethod
	signKey any
	verKey  any
	ttl     time.Duration
}

func newJWT(opts []string) (*jwtTokens, error) {
	kv := map[string]string{}
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return nil, fmt.Errorf("%w: jwt option %q is not key=value", ErrInvalidAuthOpts, o)
		}
		kv[k] = v
	}
	t := &jwtTokens{ttl: 5 * time.Minute}
	if v, ok := kv["ttl"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: jwt ttl %q", ErrInvalidAuthOpts, v)
		}
		t.ttl = d
	}
	t.method = jwt.GetSigningMethod(kv["sign-method"])
	if t.method == nil {
		return nil, fmt.Errorf("%w: jwt sign-method %q", ErrInvalidAuthOpts, kv["sign-method"])
	}
	read := func(name string) ([]byte, error) {
		p := kv[name]
		if p == "" {
			return nil, nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidAuthOpts, name, err)
		}
		return b, nil
	}
	pub, err := read("pub-key")
	if err != nil {
		return nil, err
	}
	priv, err := read("priv-key")
	if err != nil {
		return nil, err
	}
	switch t.method.(type) {
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		if priv != nil {
			if t.signKey, err = jwt.ParseRSAPrivateKeyFromPEM(priv); err != nil {
				return nil, fmt.Errorf("%w: priv-key: %v", ErrInvalidAuthOpts, err)
			}
		}
		if pub != nil {
			t.verKey, err = jwt.ParseRSAPublicKeyFromPEM(pub)
		}
	case *jwt.SigningMethodECDSA:
		if priv != nil {
			if t.signKey, err = jwt.ParseECPrivateKeyFromPEM(priv); err != nil {
				return nil, fmt.Errorf("%w: priv-key: %v", ErrInvalidAuthOpts, err)
			}
		}
		if pub != nil {
			t.verKey, err = jwt.ParseECPublicKeyFromPEM(pub)
		}
	case *jwt.SigningMethodEd25519:
		if priv != nil {
			if t.signKey, err = jwt.ParseEdPrivateKeyFromPEM(priv); err != nil {
				return nil, fmt.Errorf("%w: priv-key: %v", ErrInvalidAuthOpts, err)
			}
		}
		if pub != nil {
			t.verKey, err = jwt.ParseEdPublicKeyFromPEM(pub)
		}
	case *jwt.SigningMethodHMAC:
		// etcd: the HMAC secret is the priv-key file.
		t.signKey, t.verKey = priv, priv
	default:
		return nil, fmt.Errorf("%w: jwt sign-method %q", ErrInvalidAuthOpts, kv["sign-method"])
	}
	if err != nil {
		return nil, fmt.Errorf("%w: pub-key: %v", ErrInvalidAuthOpts, err)
	}
	if t.verKey == nil {
		return nil, fmt.Errorf("%w: jwt needs pub-key (or priv-key for HMAC)", ErrInvalidAuthOpts)
	}
	return t, nil
}

func (t *jwtTokens) NeedsSimpleToken() bool { return false }
func (t *jwtTokens) Enable()                {}
func (t *jwtTokens) Disable()               {}
func (t *jwtTokens) Invalidate(string)      {}

func (t *jwtTokens) Assign(username, _ string, rev uint64) (string, error) {
	if t.signKey == nil {
		return "", fmt.Errorf("%w: this member has no jwt priv-key", ErrInvalidAuthOpts)
	}
	tok := jwt.NewWithClaims(t.method, jwt.MapClaims{
		"username": username,
		"revision": rev,
		"exp":      time.Now().Add(t.ttl).Unix(),
	})
	return tok.SignedString(t.signKey)
}

func (t *jwtTokens) Info(token string, _ uint64) (*AuthInfo, bool) {
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return t.verKey, nil },
		jwt.WithValidMethods([]string{t.method.Alg()}), jwt.WithExpirationRequired())
	if err != nil || !parsed.Valid {
		return nil, false
	}
	user, _ := claims["username"].(string)
	rev, _ := claims["revision"].(float64)
	if user == "" || rev < 1 {
		return nil, false
	}
	return &AuthInfo{Username: user, Revision: uint64(rev)}, true
}
