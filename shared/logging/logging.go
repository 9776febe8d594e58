// Package logging builds the one go-kit logger every process uses and
// carries a request id through contexts.
package logging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// The levels and formats New understands (levels in any case); config
// refuses others rather than let New fall back to info and JSON.
const (
	LevelDebug   = "debug"
	LevelInfo    = "info"
	LevelWarn    = "warn"
	LevelError   = "error"
	FormatJSON   = "json"
	FormatLogfmt = "logfmt"
)

// New returns a JSON (or logfmt) logger with UTC timestamps, the caller and
// a level filter. Build it once in main and pass it down.
func New(w io.Writer, lvl, format string) log.Logger {
	w = log.NewSyncWriter(w)
	var l log.Logger
	if format == FormatLogfmt {
		l = log.NewLogfmtLogger(w)
	} else {
		l = log.NewJSONLogger(w)
	}
	l = log.With(l, "ts", log.TimestampFormat(func() time.Time { return time.Now().UTC() }, time.RFC3339Nano), "caller", log.DefaultCaller)
	return level.NewFilter(l, levelOption(lvl))
}

func levelOption(lvl string) level.Option {
	switch strings.ToLower(lvl) {
	case LevelDebug:
		return level.AllowDebug()
	case LevelWarn:
		return level.AllowWarn()
	case LevelError:
		return level.AllowError()
	default:
		return level.AllowInfo()
	}
}

type requestIDKey struct{}

// WithRequestID returns ctx carrying id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id of ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns a random 16-hex-digit id.
func NewRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// With returns logger annotated with the request id of ctx, when there is one.
func With(ctx context.Context, logger log.Logger) log.Logger {
	if id := RequestID(ctx); id != "" {
		return log.With(logger, "requestId", id)
	}
	return logger
}

// RedactToken hides the value of token= in a URL query for logs.
func RedactToken(rawQuery string) string {
	parts := strings.Split(rawQuery, "&")
	for i, p := range parts {
		if strings.HasPrefix(p, "token=") || strings.HasPrefix(p, "access_token=") {
			k := p[:strings.IndexByte(p, '=')]
			parts[i] = k + "=REDACTED"
		}
	}
	return strings.Join(parts, "&")
}
