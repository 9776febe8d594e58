package pusher

import (
	"context"
	"net/http"

	httptransport "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"
	"github.com/gorilla/mux"

	"github.com/beehive-im/beehive/shared/httpx"
	"github.com/beehive-im/beehive/shared/ids"
)

// MakeHTTPHandler adds the device routes of PROTOCOL.md to r:
// PUT /v1/devices/{device_id} {platform, push_token} -> {"device": {...}},
// DELETE /v1/devices/{device_id} -> 204.
func MakeHTTPHandler(r *mux.Router, e Endpoints, logger log.Logger) {
	opts := httpx.ServerOptions(logger)
	r.Methods(http.MethodPut).Path("/v1/devices/{device_id}").Handler(httptransport.NewServer(
		e.RegisterDeviceEndpoint, decodeRegisterDevice, httpx.EncodeResponse, opts...))
	r.Methods(http.MethodDelete).Path("/v1/devices/{device_id}").Handler(httptransport.NewServer(
		e.UnregisterDeviceEndpoint, decodeUnregisterDevice, httpx.EncodeResponse, opts...))
}

func decodeRegisterDevice(_ context.Context, r *http.Request) (any, error) {
	var body struct {
		Platform  string `json:"platform"`
		PushToken string `json:"push_token"`
	}
	if err := httpx.DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	reg := DeviceRegistration{DeviceID: httpx.Var(r, "device_id"), Platform: body.Platform, PushToken: body.PushToken}
	if err := ValidateRegistration(reg); err != nil {
		return nil, err
	}
	return RegisterDeviceRequest{Registration: reg}, nil
}

func decodeUnregisterDevice(_ context.Context, r *http.Request) (any, error) {
	id := httpx.Var(r, "device_id")
	if err := ids.ValidateDeviceID(id); err != nil {
		return nil, err
	}
	return UnregisterDeviceRequest{DeviceID: id}, nil
}
