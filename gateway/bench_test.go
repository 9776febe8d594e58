package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/wire"
)

// BenchmarkFanout delivers one frame to 1,000 sockets (one user each) over
// loopback TCP and waits until every client has read it.
func BenchmarkFanout(b *testing.B) {
	const n = 1000
	e := newEnv(b, gateway.Options{PingInterval: time.Hour})
	users := make([]string, n)
	var got sync.WaitGroup
	var readers sync.WaitGroup
	conns := make([]*websocket.Conn, n)
	for i := range users {
		users[i] = ids.New()
		h := http.Header{"Authorization": []string{"Bearer " + e.auth.login(users[i], "s")}}
		ws, _, err := websocket.DefaultDialer.Dial(e.wsURL(""), h)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = ws
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
				got.Done()
			}
		}()
	}
	for e.gw.Connections() < n {
		runtime.Gosched()
	}
	frame, _ := wire.EncodeFrame(wire.OpTyping, wire.TypingData{ConversationID: "g:bench", UserID: "u"})
	req := wire.DeliverRequest{UserIDs: users, Frame: frame}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got.Add(n)
		if d, err := e.gw.Deliver(context.Background(), req); err != nil || d != n {
			b.Fatalf("delivered %d, %v", d, err)
		}
		got.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(n), "sockets")
	for _, ws := range conns {
		ws.Close()
	}
	readers.Wait()
}

// BenchmarkIdleSocketMemory opens 2,000 idle sockets over loopback and
// reports heap and goroutine-stack bytes per socket. The clients are raw
// TCP connections that did the handshake by hand, so they add little
// (a net.Conn each) to what is measured; the figure is an upper bound of
// the server's cost. Run with -benchtime=1x.
func BenchmarkIdleSocketMemory(b *testing.B) {
	const n = 2000
	e := newEnv(b, gateway.Options{PingInterval: time.Hour})
	tok := e.auth.login(ids.New(), "s")
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		conns := make([]net.Conn, 0, n)
		for j := 0; j < n; j++ {
			c, err := rawHandshake(addr, tok)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		for e.gw.Connections() < n {
			runtime.Gosched()
		}
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		stack := float64(int64(after.StackInuse)-int64(before.StackInuse)) / n
		b.ReportMetric(heap, "heap-bytes/socket")
		b.ReportMetric(stack, "stack-bytes/socket")
		b.ReportMetric(heap+stack, "bytes/socket")
		for _, c := range conns {
			c.Close()
		}
		for e.gw.Connections() > 0 {
			runtime.Gosched()
		}
	}
}

// rawHandshake opens a WebSocket with a hand-written upgrade request and
// keeps only the net.Conn.
func rawHandshake(addr, token string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	req := "GET /v1/ws?token=" + token + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 512)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		c.Close()
		return nil, fmt.Errorf("handshake: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	if br.Buffered() > 0 {
		c.Close()
		return nil, fmt.Errorf("unexpected data after handshake")
	}
	return c, nil
}
