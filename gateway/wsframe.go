package gateway

import (
	"encoding/binary"
	"fmt"

	"github.com/beehive-im/beehive/shared/wire"
)

// RFC 6455 framing, server side. The gateway parses client frames out of
// whatever bytes a socket holds when it becomes readable, rather than from
// a blocking reader: a frame may arrive in pieces, and an idle socket must
// not keep a goroutine parked in the middle of one (see poll_linux.go).

// Opcodes.
const (
	opContinuation byte = 0x0
	opText         byte = 0x1
	opBinary       byte = 0x2
	opClose        byte = 0x8
	opPing         byte = 0x9
	opPong         byte = 0xA
)

// maxControlPayload is the RFC's limit on ping, pong and close payloads.
const maxControlPayload = 125

// wsFrame is one parsed client frame; payload is already unmasked and
// points into the buffer it was parsed from.
type wsFrame struct {
	fin     bool
	op      byte
	payload []byte
}

// frameError is a violation that ends the connection with code.
type frameError struct {
	code   int
	reason string
}

func (e *frameError) Error() string { return fmt.Sprintf("websocket %d: %s", e.code, e.reason) }

func protocolError(format string, args ...any) *frameError {
	return &frameError{code: wire.CloseProtocolError, reason: fmt.Sprintf(format, args...)}
}

// parseFrame parses the client frame at the start of b, unmasking its
// payload in place. It returns the frame and n, the bytes it took. When b
// holds only part of a frame, n is 0 and need is the size of the whole
// frame, or of the next header field while the header itself is short.
// A data frame whose payload exceeds limit is refused from its header, so
// an oversized frame is never buffered.
func parseFrame(b []byte, limit int64) (f wsFrame, n, need int, err *frameError) {
	if len(b) < 2 {
		return f, 0, 2, nil
	}
	b0, b1 := b[0], b[1]
	f.fin = b0&0x80 != 0
	f.op = b0 & 0x0f
	if b0&0x70 != 0 {
		return f, 0, 0, protocolError("reserved bits set: no extension was negotiated")
	}
	switch f.op {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
	default:
		return f, 0, 0, protocolError("unknown opcode %d", f.op)
	}
	if b1&0x80 == 0 {
		return f, 0, 0, protocolError("client frames must be masked")
	}
	size := uint64(b1 & 0x7f)
	h := 2
	switch size {
	case 126:
		if len(b) < 4 {
			return f, 0, 4, nil
		}
		size, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return f, 0, 10, nil
		}
		size, h = binary.BigEndian.Uint64(b[2:]), 10
		if size>>63 != 0 {
			return f, 0, 0, protocolError("payload length has its top bit set")
		}
	}
	if f.op >= opClose {
		if !f.fin {
			return f, 0, 0, protocolError("control frames must not be fragmented")
		}
		if size > maxControlPayload {
			return f, 0, 0, protocolError("control frame payload over 125 bytes")
		}
	} else if size > uint64(limit) {
		return f, 0, 0, &frameError{code: wire.CloseInvalidFrameStream, reason: fmt.Sprintf("frame exceeds %d bytes", limit)}
	}
	total := h + 4 + int(size)
	if len(b) < total {
		return f, 0, total, nil
	}
	key := b[h : h+4]
	f.payload = b[h+4 : total]
	unmask(f.payload, key)
	return f, total, 0, nil
}

// unmask XORs p with the 4-byte key, eight bytes at a time where it can.
func unmask(p, key []byte) {
	k := binary.LittleEndian.Uint32(key)
	k8 := uint64(k) | uint64(k)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k8)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}

// appendFrameHeader appends the header of an unmasked, final server frame
// with op and a payload of n bytes.
func appendFrameHeader(dst []byte, op byte, n int) []byte {
	dst = append(dst, 0x80|op)
	switch {
	case n <= 125:
		return append(dst, byte(n))
	case n <= 0xffff:
		return append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// closePayload is a close frame's body: the code, then a reason cut to fit
// the 125-byte control frame limit.
func closePayload(code int, reason string) []byte {
	if len(reason) > maxControlPayload-2 {
		reason = reason[:maxControlPayload-2]
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(b, reason...)
}

// closeFrame is a whole close frame, header and payload.
func closeFrame(code int, reason string) [][]byte {
	payload := closePayload(code, reason)
	return [][]byte{appendFrameHeader(nil, opClose, len(payload)), payload}
}

// echoCloseCode is the code to answer a client's close frame with: its own
// code when that may be sent on the wire, else 1000.
func echoCloseCode(payload []byte) int {
	if len(payload) < 2 {
		return wire.CloseNormal
	}
	code := int(binary.BigEndian.Uint16(payload))
	switch {
	case code < 1000 || code >= 5000, code == 1004, code == 1005, code == 1006, code == 1015:
		return wire.CloseNormal
	}
	return code
}
