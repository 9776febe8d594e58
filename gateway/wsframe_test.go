package gateway

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/beehive-im/beehive/shared/wire"
)

// maskedFrame builds a client frame the way a browser does.
func maskedFrame(fin bool, op byte, payload []byte, key [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

func TestParseFrameAcrossEverySplit(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	payloads := [][]byte{
		[]byte(`{"op":"ping","id":1}`),
		bytes.Repeat([]byte("x"), 300),   // 16-bit length
		bytes.Repeat([]byte("y"), 70000), // 64-bit length
		[]byte("héllo, 世界"),              // bytes, not runes
		{},
	}
	var stream []byte
	for _, p := range payloads {
		stream = append(stream, maskedFrame(true, opText, p, key)...)
	}
	// Feed the stream cut at every point of the first two frames and at
	// coarse points after: the frames come out whole and in order.
	cuts := []int{}
	for i := 0; i < 2+4+len(payloads[0])+4+4+300+10; i++ {
		cuts = append(cuts, i)
	}
	for i := len(stream) - 40; i < len(stream); i += 3 {
		cuts = append(cuts, i)
	}
	for _, cut := range cuts {
		var got [][]byte
		buf := append([]byte(nil), stream[:cut]...)
		rest := stream[cut:]
		for {
			f, n, need, err := parseFrame(buf, 1<<20)
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			if n == 0 {
				if len(rest) == 0 {
					break
				}
				if need <= len(buf) {
					t.Fatalf("cut %d: need %d with %d buffered", cut, need, len(buf))
				}
				// Deliver exactly what was asked for, or what is left.
				k := min(need-len(buf), len(rest))
				buf = append(buf, rest[:k]...)
				rest = rest[k:]
				continue
			}
			if !f.fin || f.op != opText {
				t.Fatalf("cut %d: frame fin=%v op=%d", cut, f.fin, f.op)
			}
			got = append(got, append([]byte(nil), f.payload...))
			buf = buf[n:]
		}
		if len(got) != len(payloads) {
			t.Fatalf("cut %d: %d frames, want %d", cut, len(got), len(payloads))
		}
		for i := range got {
			if !bytes.Equal(got[i], payloads[i]) {
				t.Fatalf("cut %d: frame %d differs", cut, i)
			}
		}
	}
}

func TestParseFrameRefusesProtocolViolations(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	unmasked := []byte{0x81, 0x02, 'h', 'i'}
	rsv := maskedFrame(true, opText, []byte("hi"), key)
	rsv[0] |= 0x40
	badOp := maskedFrame(true, 0x3, []byte("hi"), key)
	fragPing := maskedFrame(false, opPing, nil, key)
	longPing := maskedFrame(true, opPing, bytes.Repeat([]byte("p"), 126), key)
	topBit := []byte{0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1}
	big := maskedFrame(true, opText, bytes.Repeat([]byte("b"), 1025), key)
	cases := []struct {
		name  string
		frame []byte
		code  int
		has   string
	}{
		{"unmasked", unmasked, wire.CloseProtocolError, "masked"},
		{"reserved bits", rsv, wire.CloseProtocolError, "reserved"},
		{"unknown opcode", badOp, wire.CloseProtocolError, "opcode"},
		{"fragmented control", fragPing, wire.CloseProtocolError, "fragmented"},
		{"control over 125", longPing, wire.CloseProtocolError, "125"},
		{"length top bit", topBit, wire.CloseProtocolError, "top bit"},
		{"over the limit", big, wire.CloseInvalidFrameStream, "1024"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, n, _, err := parseFrame(c.frame, 1024)
			if err == nil || n != 0 {
				t.Fatalf("accepted (n=%d)", n)
			}
			if err.code != c.code || !strings.Contains(err.reason, c.has) {
				t.Fatalf("got %d %q, want %d mentioning %q", err.code, err.reason, c.code, c.has)
			}
		})
	}
	// An oversized frame is refused from its header alone: nothing of
	// its payload needs to arrive.
	if _, _, _, err := parseFrame(big[:8], 1024); err == nil {
		t.Fatal("oversized header accepted")
	}
}

func TestUnmaskMatchesBytewise(t *testing.T) {
	key := []byte{0xde, 0xad, 0xbe, 0xef}
	for n := 0; n < 40; n++ {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		want := make([]byte, n)
		for i := range p {
			want[i] = p[i] ^ key[i%4]
		}
		unmask(p, key)
		if !bytes.Equal(p, want) {
			t.Fatalf("n=%d: %x, want %x", n, p, want)
		}
	}
}

func TestFrameHeaderLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xffff, 0x10000} {
		h := appendFrameHeader(nil, opText, n)
		if h[0] != 0x81 {
			t.Fatalf("n=%d: first byte %x", n, h[0])
		}
		var got int
		switch h[1] {
		case 126:
			got = int(binary.BigEndian.Uint16(h[2:]))
		case 127:
			got = int(binary.BigEndian.Uint64(h[2:]))
		default:
			got = int(h[1])
		}
		if got != n || h[1]&0x80 != 0 {
			t.Fatalf("n=%d: header %x", n, h)
		}
	}
	if p := closePayload(4009, strings.Repeat("r", 200)); len(p) != maxControlPayload || binary.BigEndian.Uint16(p) != 4009 {
		t.Fatalf("close payload %d bytes", len(p))
	}
	for in, want := range map[int]int{1000: 1000, 4001: 4001, 1005: 1000, 999: 1000, 5000: 1000} {
		if got := echoCloseCode(binary.BigEndian.AppendUint16(nil, uint16(in))); got != want {
			t.Fatalf("echo %d = %d, want %d", in, got, want)
		}
	}
	if echoCloseCode(nil) != wire.CloseNormal {
		t.Fatal("empty close payload not answered with 1000")
	}
}

// FuzzParseFrame: any bytes give a frame, a need or an error, never a
// panic, and a frame never claims more bytes than there are.
func FuzzParseFrame(f *testing.F) {
	key := [4]byte{1, 2, 3, 4}
	f.Add(maskedFrame(true, opText, []byte(`{"op":"ping"}`), key))
	f.Add(maskedFrame(false, opContinuation, bytes.Repeat([]byte("z"), 300), key))
	f.Add([]byte{0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, need, err := parseFrame(b, 4096)
		switch {
		case err != nil:
			if n != 0 {
				t.Fatalf("error with n=%d", n)
			}
		case n == 0:
			if need <= len(b) {
				t.Fatalf("need %d with %d bytes", need, len(b))
			}
		default:
			if n > len(b) || len(fr.payload) > n {
				t.Fatalf("n=%d payload %d of %d bytes", n, len(fr.payload), len(b))
			}
		}
	})
}
