package grpc

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestCallMetrics_CountsStartsAndOutcomes: the interceptors count each
// call once as started and once as handled with its status code, under
// go-grpc-prometheus's labels, for registered and unknown methods alike.
func TestCallMetrics_CountsStartsAndOutcomes(t *testing.T) {
	t.Logf("Step 1: a registry of one known method")
	const known = "/metricstest.Svc/Known"
	cm := callMetrics{known: newMethodMetrics(known, "unary")}
	unary := cm.unaryInterceptor()
	stream := cm.streamInterceptor()
	started := func(typ, method string) float64 {
		return counterValue(t, grpcStarted.WithLabelValues(typ, "metricstest.Svc", method))
	}
	handled := func(typ, method, code string) float64 {
		return counterValue(t, grpcHandled.WithLabelValues(typ, "metricstest.Svc", method, code))
	}

	// The counters are process-wide (go test -count=N runs this again): compare
	// against their values before the calls.
	base := map[string]float64{
		"sK": started("unary", "Known"), "hKOK": handled("unary", "Known", "OK"),
		"hKNF": handled("unary", "Known", "NotFound"), "sO": started("unary", "Other"),
		"hOOK": handled("unary", "Other", "OK"), "sW": started("server_stream", "Watch"),
		"hWC": handled("server_stream", "Watch", "Canceled"),
	}

	t.Logf("Step 2: two OK calls, one NotFound, one unknown method, one server stream")
	ok := func(context.Context, any) (any, error) { return "r", nil }
	notFound := func(context.Context, any) (any, error) { return nil, status.Error(codes.NotFound, "x") }
	for _, h := range []grpc.UnaryHandler{ok, ok, notFound} {
		_, _ = unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: known}, h)
	}
	_, _ = unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/metricstest.Svc/Other"}, ok)
	_ = stream(nil, nil, &grpc.StreamServerInfo{FullMethod: "/metricstest.Svc/Watch", IsServerStream: true},
		func(any, grpc.ServerStream) error { return status.Error(codes.Canceled, "bye") })

	t.Logf("Step 3: every call is counted with its code")
	require.Equal(t, 3.0, started("unary", "Known")-base["sK"])
	require.Equal(t, 2.0, handled("unary", "Known", "OK")-base["hKOK"])
	require.Equal(t, 1.0, handled("unary", "Known", "NotFound")-base["hKNF"])
	require.Equal(t, 1.0, started("unary", "Other")-base["sO"])
	require.Equal(t, 1.0, handled("unary", "Other", "OK")-base["hOOK"])
	require.Equal(t, 1.0, started("server_stream", "Watch")-base["sW"])
	require.Equal(t, 1.0, handled("server_stream", "Watch", "Canceled")-base["hWC"])
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}
