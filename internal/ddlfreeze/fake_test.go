package ddlfreeze

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

// fakeConn is a recording fake of a node: queries answer from a script
// (each query's answers are used in turn, the last one repeats), every
// statement sent is recorded.
type fakeConn struct {
	name string
	mu   sync.Mutex
	// answers: query → successive answers.
	answers map[string][]answer
	execErr map[string]error
	log     []string
}

type answer struct {
	rows []string
	err  error
}

func newFake(name string) *fakeConn {
	return &fakeConn{name: name, answers: map[string][]answer{}, execErr: map[string]error{}}
}

func (f *fakeConn) on(query string, rows ...string) *fakeConn {
	f.answers[query] = append(f.answers[query], answer{rows: rows})
	return f
}

func (f *fakeConn) fail(query string, err error) *fakeConn {
	f.answers[query] = append(f.answers[query], answer{err: err})
	return f
}

func (f *fakeConn) Name() string { return f.name }

func (f *fakeConn) Exec(_ context.Context, stmt string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "EXEC "+stmt)
	return f.execErr[stmt]
}

func (f *fakeConn) QueryStrings(_ context.Context, q string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "QUERY "+q)
	as, ok := f.answers[q]
	if !ok {
		return nil, fmt.Errorf("fake %s: unexpected query %q", f.name, q)
	}
	a := as[0]
	if len(as) > 1 {
		f.answers[q] = as[1:]
	}
	return a.rows, a.err
}

func (f *fakeConn) execs() []string {
	var out []string
	for _, l := range f.log {
		if s, ok := strings.CutPrefix(l, "EXEC "); ok {
			out = append(out, s)
		}
	}
	return out
}

// serverError is an exception as the driver returns it, wrapped as a Node
// error.
func serverError(code int32, msg string) error {
	return &clickhouse.NodeError{Node: "ch-1", Addr: "127.0.0.1:9000", Err: &proto.Exception{Code: code, Name: "DB::Exception", Message: msg}}
}
