package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"

	"go.uber.org/zap"
	"gopkg.in/natefinch/lumberjack.v2"
)

// etcd's --enable-log-rotation and --log-rotation-config-json: the one file
// among --log-outputs is written through lumberjack, which starts a new
// file past maxsize MB and keeps maxbackups old ones for maxage days
// (0: all), as etcd does. The other outputs (stderr, stdout) are written
// as they are.

// defaultLogRotationConfig is etcd's default.
const defaultLogRotationConfig = `{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}`

// errLogRotationOutput is etcd's error when rotation has no file, or more
// than one, to rotate.
var errLogRotationOutput = errors.New("--log-outputs requires a single file path when --log-rotate-config-json is defined")

// logRotation is the JSON of --log-rotation-config-json (lumberjack's
// settings, etcd's keys).
type logRotation struct {
	MaxSize    int  `json:"maxsize"`
	MaxAge     int  `json:"maxage"`
	MaxBackups int  `json:"maxbackups"`
	LocalTime  bool `json:"localtime"`
	Compress   bool `json:"compress"`
}

// rotatingSink is a zap sink over one lumberjack file.
type rotatingSink struct{ *lumberjack.Logger }

func (rotatingSink) Sync() error { return nil }

// rotateScheme names the zap sink of rotated files; rotations holds each
// path's settings and its one sink (zap opens the path twice: for the log
// and for its own errors).
const rotateScheme = "metastore-rotate"

var rotations struct {
	once  sync.Once
	mu    sync.Mutex
	cfg   map[string]logRotation
	sinks map[string]rotatingSink // one per path, made with the settings in made
	made  map[string]logRotation
}

func rotatingSinkFor(u *url.URL) (zap.Sink, error) {
	rotations.mu.Lock()
	defer rotations.mu.Unlock()
	r, ok := rotations.cfg[u.Path]
	if !ok {
		return nil, fmt.Errorf("log rotation: no settings for %s", u.Path)
	}
	if s, ok := rotations.sinks[u.Path]; ok && rotations.made[u.Path] == r {
		return s, nil
	}
	s := rotatingSink{&lumberjack.Logger{Filename: u.Path, MaxSize: r.MaxSize, MaxAge: r.MaxAge,
		MaxBackups: r.MaxBackups, LocalTime: r.LocalTime, Compress: r.Compress}}
	rotations.sinks[u.Path], rotations.made[u.Path] = s, r
	return s, nil
}

// withLogRotation checks etcd's rules (one file output; the JSON's syntax
// and types) and returns outs with the file written through lumberjack.
func withLogRotation(outs []string, configJSON string) ([]string, error) {
	files := 0
	for _, o := range outs {
		if o != "stderr" && o != "stdout" {
			files++
		}
	}
	if (len(outs) == 1 && files == 0) || files > 1 {
		return nil, errLogRotationOutput
	}
	var r logRotation
	if err := json.Unmarshal([]byte(configJSON), &r); err != nil {
		var syntaxErr *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntaxErr):
			return nil, fmt.Errorf("improperly formatted log rotation config: %w", err)
		case errors.As(err, &typeErr):
			return nil, fmt.Errorf("invalid log rotation config: %w", err)
		default:
			return nil, fmt.Errorf("fail to unmarshal log rotation config: %w", err)
		}
	}
	rotations.once.Do(func() {
		rotations.cfg, rotations.sinks, rotations.made = map[string]logRotation{}, map[string]rotatingSink{}, map[string]logRotation{}
		if err := zap.RegisterSink(rotateScheme, rotatingSinkFor); err != nil {
			panic(err) // registered once per process: cannot fail
		}
	})
	out := make([]string, len(outs))
	for i, o := range outs {
		out[i] = o
		if o == "stderr" || o == "stdout" {
			continue
		}
		abs, err := filepath.Abs(o)
		if err != nil {
			return nil, fmt.Errorf("--log-outputs %q: %w", o, err)
		}
		rotations.mu.Lock()
		rotations.cfg[abs] = r
		rotations.mu.Unlock()
		out[i] = (&url.URL{Scheme: rotateScheme, Path: abs}).String()
	}
	return out, nil
}
