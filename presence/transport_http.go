package presence

import (
	"context"
	"net/http"
	"strings"

	httptransport "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"
	"github.com/gorilla/mux"

	"github.com/beehive-im/beehive/shared/errs"
	"github.com/beehive-im/beehive/shared/httpx"
)

// MakeHTTPHandler adds GET /v1/presence?user_ids=a,b,c to r.
func MakeHTTPHandler(r *mux.Router, e Endpoints, logger log.Logger) {
	opts := httpx.ServerOptions(logger)
	r.Methods(http.MethodGet).Path("/v1/presence").Handler(httptransport.NewServer(
		e.GetUserPresenceEndpoint, decodeGetPresence, httpx.EncodeResponse, opts...))
}

func decodeGetPresence(_ context.Context, r *http.Request) (any, error) {
	raw := r.URL.Query()["user_ids"]
	if len(raw) == 0 || strings.Join(raw, "") == "" {
		return nil, errs.Missing("user_ids")
	}
	var list []string
	for _, v := range raw {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				list = append(list, id)
			}
		}
		// Refuse early: an absurd query must not cost a big allocation.
		if len(list) > MaxBatch*2 {
			return nil, errs.Invalid("user_ids", "at most 200 ids per query")
		}
	}
	ids, err := ValidateUserIDs(list)
	if err != nil {
		return nil, err
	}
	return UsersRequest{UserIDs: ids}, nil
}
