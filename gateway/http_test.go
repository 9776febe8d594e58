package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/gorilla/mux"
	"github.com/gorilla/websocket"

	"github.com/beehive-im/beehive/gateway"
	"github.com/beehive-im/beehive/gateway/gatewaypb"
	"github.com/beehive-im/beehive/shared/endpointx"
	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/grpcx"
	"github.com/beehive-im/beehive/shared/ids"
	"github.com/beehive-im/beehive/shared/ratelimit"
	"github.com/beehive-im/beehive/shared/testinfra"
	"github.com/beehive-im/beehive/shared/wire"
)

func TestHTTPHandlerMountsRoutesLimitsPerIPAndRedactsTokens(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	var logs testinfra.LogBuffer
	h := gateway.NewHTTPHandler(gateway.HTTPOptions{
		WS:        e.gw,
		IPLimiter: ratelimit.NewLocal(0.001, 4),
		BodyLimit: 64,
		Logger:    log.NewJSONLogger(&logs),
	}, func(r *mux.Router) {
		r.Methods(http.MethodPost).Path("/v1/echo").HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var v map[string]any
			if err := jsonDecode(r, &v); err != nil {
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	tok := e.auth.login(ids.New(), "s1")
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/ws?token="+tok, nil)
	if err != nil {
		t.Fatalf("ws through the router: %v", err)
	}
	ws.Close()

	resp, err := http.Post(srv.URL+"/v1/echo", "application/json", strings.NewReader(`{"a":"`+strings.Repeat("x", 100)+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", resp.StatusCode)
	}
	resp, err = http.Post(srv.URL+"/v1/echo", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("mounted route: %d", resp.StatusCode)
	}
	// The fourth limited request passes, the fifth is refused; /health never.
	for i, want := range []int{404, 429} {
		resp, err := http.Get(srv.URL + "/v1/nothing")
		if err != nil {
			t.Fatal(err)
		}
		var body errs.Body
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != want || body.Error == nil {
			t.Fatalf("request %d: %d %+v, want %d with a JSON error", i, resp.StatusCode, body.Error, want)
		}
	}
	resp, err = http.Get(srv.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/health limited: %d", resp.StatusCode)
	}
	// The upgrade's log line is written when its handler returns, which
	// may be after the client already has its 101.
	testinfra.Eventually(t, 10*time.Second, "ws request logged with status 101 and the token redacted", func() bool {
		out := logs.String()
		return strings.Contains(out, "token=REDACTED") && strings.Contains(out, `"status":101`)
	})
	if out := logs.String(); strings.Contains(out, tok) {
		t.Fatalf("token leaked into logs: %s", out)
	}
}

func jsonDecode(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }

func TestGRPCDeliverNeedsServiceTokenAndReachesSockets(t *testing.T) {
	e := newEnv(t, gateway.Options{})
	alice := ids.New()
	c := e.dial(t, e.auth.login(alice, "s1"), "")
	eps := gateway.MakeServerEndpoints(e.gw, "secret", endpointx.Kit{})
	gs := grpcx.NewServer(log.NewNopLogger())
	gatewaypb.RegisterGatewayServiceServer(gs.Server, gateway.NewGRPCServer(eps, log.NewNopLogger()))
	ln, err := grpcx.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()
	cc, err := grpcx.Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	frame, _ := wire.EncodeFrame(wire.OpPresence, wire.PresenceData{UserID: "x", Online: true})
	req := wire.DeliverRequest{UserIDs: []string{alice}, Frame: frame}
	if _, err := gateway.NewGRPCClient(cc, "wrong").Deliver(context.Background(), req); !errs.HasCode(err, errs.PermissionDenied) {
		t.Fatalf("deliver with a wrong credential: %v", err)
	}
	n, err := gateway.NewGRPCClient(cc, "secret").Deliver(context.Background(), req)
	if err != nil || n != 1 {
		t.Fatalf("deliver: %d, %v", n, err)
	}
	if got := c.ping(); len(got) != 1 || got[0].Op != "presence" {
		t.Fatalf("socket got %+v", got)
	}
	// More frames cross the wire too, in order.
	typing, _ := wire.EncodeFrame(wire.OpTyping, wire.TypingData{ConversationID: "c", UserID: "u"})
	req.More = []wire.DeliverFrame{{Frame: typing}, {Frame: frame, ExceptConn: "gw-test/other"}}
	if n, err := gateway.NewGRPCClient(cc, "secret").Deliver(context.Background(), req); err != nil || n != 1 {
		t.Fatalf("deliver with more: %d, %v", n, err)
	}
	if got := c.ping(); len(got) != 3 || got[0].Op != "presence" || got[1].Op != "typing" || got[2].Op != "presence" {
		t.Fatalf("socket got %+v", got)
	}
	if _, err := gateway.NewGRPCClient(cc, "secret").Deliver(context.Background(), wire.DeliverRequest{Frame: frame}); errs.As(err).Field != "user_ids" {
		t.Fatalf("deliver without users: %v", err)
	}
}
