package wire

// DeliverRequest is finished server frames for some users' sockets on one
// gateway instance: what the pusher hands the gateway (in process, or over
// the gateway's gRPC service, whose transport converts it to protobuf).
type DeliverRequest struct {
	UserIDs []string `json:"user_ids"`
	// Frame is a complete server frame, e.g. from EncodeFrame.
	Frame []byte `json:"frame"`
	// ExceptConn is "<gateway_id>/<conn_id>" (or a bare conn id) of a
	// socket to skip: the sender's own socket, which got `sent`.
	ExceptConn string `json:"except_conn,omitempty"`
	// More are frames that follow Frame, in order, to the same users, each
	// with its own socket to skip. A socket gets all of its frames in one
	// write: the pusher sends a batch of one conversation's records so.
	More []DeliverFrame `json:"more,omitempty"`
}

// DeliverFrame is one of DeliverRequest.More.
type DeliverFrame struct {
	Frame      []byte `json:"frame"`
	ExceptConn string `json:"except_conn,omitempty"`
}
