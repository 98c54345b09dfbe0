package grpc

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/metadata"
)

// recordingGate is an AuthGate that records the token it was asked about.
type recordingGate struct {
	enabled bool
	tokens  []string
}

func (g *recordingGate) AuthContext(ctx context.Context, token string) (context.Context, error) {
	g.tokens = append(g.tokens, token)
	return ctx, nil
}

func (g *recordingGate) AuthContextUser(ctx context.Context, user string) context.Context { return ctx }
func (g *recordingGate) AuthorizeAdmin(ctx context.Context) error                         { return nil }
func (g *recordingGate) AuthorizeUser(ctx context.Context) error                          { return nil }
func (g *recordingGate) AuthEnabled() bool                                                { return g.enabled }

func TestAuthorize_TokenReadOnlyWhenAuthIsOn(t *testing.T) {
	t.Logf("Step 1: prepare: a call carrying a token, and a gate with auth off")
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(rpctypes.TokenFieldNameGRPC, "tok1"))
	g := &recordingGate{}

	t.Logf("Step 2: act: authorize the call with auth off, then on")
	_, err := authorize(g, ctx, "/etcdserverpb.KV/Range")
	require.NoError(t, err)
	g.enabled = true
	_, err = authorize(g, ctx, "/etcdserverpb.KV/Range")
	require.NoError(t, err)

	t.Logf("Step 3: verify: the token is ignored with auth off and passed on with auth on")
	require.Equal(t, []string{"", "tok1"}, g.tokens)
}
