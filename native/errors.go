package native

/*
#include <stdlib.h>
*/
import "C"

import (
	"strings"
	"unsafe"
)

// Code classifies a RocksDB status by the prefix of its message (the C API
// reports errors only as Status::ToString() text).
type Code int

const (
	CodeUnknown Code = iota
	CodeNotFound
	CodeCorruption
	CodeNotSupported
	CodeInvalidArgument
	CodeIOError
	CodeBusy
	CodeIncomplete
	CodeShutdown
	CodeAborted
)

var codePrefixes = []struct {
	prefix string
	code   Code
}{
	{"NotFound: ", CodeNotFound},
	{"Corruption: ", CodeCorruption},
	{"Not implemented: ", CodeNotSupported},
	{"Invalid argument: ", CodeInvalidArgument},
	{"IO error: ", CodeIOError},
	{"Resource busy: ", CodeBusy},
	{"Result incomplete: ", CodeIncomplete},
	{"Shutdown in progress: ", CodeShutdown},
	{"Operation aborted: ", CodeAborted},
}

// Error is a RocksDB error: its status class and its one-line message.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Locked reports whether the error is RocksDB failing to take the LOCK file
// of its directory: another DB in this process or another process has it.
func (e *Error) Locked() bool {
	if e.Code != CodeIOError {
		return false
	}
	m := strings.ToLower(e.Msg)
	return strings.Contains(m, "lock file") || strings.Contains(m, "lock hold") ||
		strings.Contains(m, "/lock:") || strings.Contains(m, "no locks available")
}

// NoSpace reports whether the error is the disk being full.
func (e *Error) NoSpace() bool {
	return e.Code == CodeIOError && strings.Contains(e.Msg, "No space left on device")
}

// newError classifies msg and folds it onto one line.
func newError(msg string) *Error {
	msg = strings.Join(strings.Fields(msg), " ")
	code := CodeUnknown
	for _, p := range codePrefixes {
		if strings.HasPrefix(msg, p.prefix) {
			code = p.code
			break
		}
	}
	return &Error{Code: code, Msg: msg}
}

// takeError converts and frees a malloc'd C error string.
func takeError(e *C.char) error {
	msg := C.GoString(e)
	C.free(unsafe.Pointer(e))
	return newError(msg)
}
