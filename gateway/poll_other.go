//go:build !linux

package gateway

import (
	"errors"
	"syscall"
)

// poller is Linux only (epoll). Elsewhere every socket is read by a
// goroutine of its own, which costs more memory per idle socket but
// behaves the same.
type poller struct{}

func newPoller(func(error)) (*poller, error) {
	return nil, errors.New("no readiness poller on this platform")
}

func (*poller) attach(*conn) bool { return false }
func (*poller) watch(*conn) error { return errors.ErrUnsupported }
func (*poller) rearm(*conn) error { return errors.ErrUnsupported }
func (*poller) remove(*conn)      {}
func (*poller) close()            {}

func readNow(syscall.RawConn, []byte) (int, error)    { return 0, errors.ErrUnsupported }
func writeNow(syscall.RawConn, [][]byte) (int, error) { return 0, errors.ErrUnsupported }
