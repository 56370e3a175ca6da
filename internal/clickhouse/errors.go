package clickhouse

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// Server error codes chmedic branches on (ClickHouse's ErrorCodes.cpp).
const (
	CodeUnknownIdentifier = 47
	CodeUnknownTable      = 60
	CodeUnknownDatabase   = 81
	CodeTimeoutExceeded   = 159
	CodeReadonly          = 164
	CodeNoZooKeeper       = 225
	CodeTableIsReadOnly   = 242
	CodeKeeperException   = 999 // Coordination::Exception (ZooKeeper / Keeper)
)

// ErrNoSlot is returned when a query could not start because the node's
// in-flight limit stayed full until the context ended.
var ErrNoSlot = errors.New("no free query slot before the deadline")

// Exception returns the server exception in err's chain, or nil. Its Code
// and Message are as the server sent them.
func Exception(err error) *proto.Exception {
	var ex *proto.Exception
	if errors.As(err, &ex) {
		return ex
	}
	return nil
}

// ErrorCode returns the ClickHouse error code in err's chain, or 0.
func ErrorCode(err error) int {
	if ex := Exception(err); ex != nil {
		return int(ex.Code)
	}
	return 0
}

// IsUnknownTable reports whether the server said a table (or its database)
// does not exist.
func IsUnknownTable(err error) bool {
	switch ErrorCode(err) {
	case CodeUnknownTable, CodeUnknownDatabase:
		return true
	}
	return false
}

// IsCoordination reports whether the server failed because of its
// coordination service (ZooKeeper / Keeper): a Coordination::Exception,
// no ZooKeeper configured, or a replicated table in read-only mode.
func IsCoordination(err error) bool {
	switch ErrorCode(err) {
	case CodeKeeperException, CodeNoZooKeeper, CodeTableIsReadOnly:
		return true
	}
	return false
}

// IsTimeout reports whether err is a deadline: the context's, the server's
// max_execution_time, or a network timeout.
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNoSlot) {
		return true
	}
	if ErrorCode(err) == CodeTimeoutExceeded {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// IsUnreachable reports whether err means the node could not be talked to
// at all (refused, reset, closed, DNS, dial failure), as opposed to a server
// error or a timeout.
func IsUnreachable(err error) bool {
	if err == nil || Exception(err) != nil {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) {
		return true
	}
	return strings.Contains(err.Error(), "connection refused")
}
