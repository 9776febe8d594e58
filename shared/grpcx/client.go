package grpcx

import (
	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	grpctransport "github.com/go-kit/kit/transport/grpc"
	"github.com/go-kit/log"
	"google.golang.org/grpc"
)

// ClientEndpoint builds one method's client endpoint from the method's
// name and codecs. A domain's NewGRPCClientEndpoints calls it once per
// method; BalancedClient and ConnClient make the two kinds every domain
// offers.
type ClientEndpoint func(method string, enc grpctransport.EncodeRequestFunc, dec grpctransport.DecodeResponseFunc, reply any) endpoint.Endpoint

// BalancedClient makes each method's endpoint with Balanced over the
// instances instancer finds (one shared connection per instance in conns,
// retries and breakers), calling service (the full gRPC service name, e.g.
// "beehive.user.v1.UserService"). Endpoint and breaker names are
// name+"."+method. serviceToken is sent with every call (ClientOptions).
func BalancedClient(name, service string, instancer sd.Instancer, conns *Conns, serviceToken string, logger log.Logger, opts BalanceOptions) ClientEndpoint {
	return func(method string, enc grpctransport.EncodeRequestFunc, dec grpctransport.DecodeResponseFunc, reply any) endpoint.Endpoint {
		return Balanced(name+"."+method, instancer, conns, func(cc *grpc.ClientConn) endpoint.Endpoint {
			return grpctransport.NewClient(cc, service, method, enc, dec, reply, ClientOptions(serviceToken)...).Endpoint()
		}, logger, opts)
	}
}

// ConnClient makes each method's endpoint over the one connection cc
// (tests, and static single-address setups), with status errors converted
// by ClientErrors.
func ConnClient(cc *grpc.ClientConn, service, serviceToken string) ClientEndpoint {
	return func(method string, enc grpctransport.EncodeRequestFunc, dec grpctransport.DecodeResponseFunc, reply any) endpoint.Endpoint {
		return ClientErrors(grpctransport.NewClient(cc, service, method, enc, dec, reply, ClientOptions(serviceToken)...).Endpoint())
	}
}
