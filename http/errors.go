package http

import (
	"errors"

	"github.com/valyala/fasthttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metastore/metastore/etcderr"
)

// apiError is an error as this front end reports it: the gRPC code etcd's
// gateway would report, etcd's message (the one clientv3 sees), and the HTTP
// status grpc-gateway v2 derives from the code.
type apiError struct {
	code    codes.Code
	message string
	status  int
}

func (e apiError) Error() string { return e.message }

// toAPIError translates an error from the server into etcd's code and
// message. Unknown errors become codes.Unknown (HTTP 500) with their own
// message, as etcd's gateway does.
func toAPIError(err error) apiError {
	var ae apiError
	if errors.As(err, &ae) {
		return ae
	}
	return fromStatus(etcderr.FromError(err))
}

func fromStatus(err error) apiError {
	st := status.Convert(err)
	return newAPIError(st.Code(), st.Message())
}

func newAPIError(code codes.Code, msg string) apiError {
	return apiError{code: code, message: msg, status: httpStatus(code)}
}

// httpStatus is grpc-gateway v2's HTTPStatusFromCode: the status etcd's JSON
// gateway answers for each gRPC code.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return fasthttp.StatusOK
	case codes.Canceled:
		return 499 // client closed request (nginx's code, as grpc-gateway)
	case codes.Unknown, codes.Internal, codes.DataLoss:
		return fasthttp.StatusInternalServerError
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return fasthttp.StatusBadRequest
	case codes.DeadlineExceeded:
		return fasthttp.StatusGatewayTimeout
	case codes.NotFound:
		return fasthttp.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return fasthttp.StatusConflict
	case codes.PermissionDenied:
		return fasthttp.StatusForbidden
	case codes.Unauthenticated:
		return fasthttp.StatusUnauthorized
	case codes.ResourceExhausted:
		return fasthttp.StatusTooManyRequests
	case codes.Unimplemented:
		return fasthttp.StatusNotImplemented
	case codes.Unavailable:
		return fasthttp.StatusServiceUnavailable
	}
	return fasthttp.StatusInternalServerError
}

// Errors of this front end itself, for requests that never reach the server.
var (
	errNotFound         = newAPIError(codes.NotFound, "Not Found")
	errMethodNotAllowed = apiError{code: codes.Unimplemented, message: "Method Not Allowed", status: fasthttp.StatusMethodNotAllowed}
	errBodyTooLarge     = apiError{code: codes.InvalidArgument, message: "etcdserver: request is too large", status: fasthttp.StatusRequestEntityTooLarge}
	errKeyNotFound      = newAPIError(codes.NotFound, "key not found")
	errRequestTimeout   = apiError{code: codes.DeadlineExceeded, message: "request timeout", status: fasthttp.StatusRequestTimeout}
)

// badRequest is a client's mistake found by this front end (JSON, base64,
// a query parameter): 400 with codes.InvalidArgument.
func badRequest(msg string) apiError { return newAPIError(codes.InvalidArgument, msg) }

func preconditionFailed(msg string) apiError {
	return apiError{code: codes.FailedPrecondition, message: msg, status: fasthttp.StatusPreconditionFailed}
}
