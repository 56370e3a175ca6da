package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// errAddrInUse marks a start that failed because a port was taken between
// allocation and use; Start retries once on it.
var errAddrInUse = errors.New("address already in use")

// stopGrace bounds how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 20 * time.Second

// process is one server process, restartable: each start is a new run with the
// same command line and log file.
type process struct {
	name    string
	path    string
	args    []string
	dir     string
	logPath string // stdout and stderr, appended across runs

	mu  sync.Mutex
	run *run
}

type run struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returns
	err  error         // Wait's result, valid after done
}

func (r *run) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// start launches the process in its own process group, dying with the test
// binary (Pdeathsig), with output appended to logPath.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil && !p.run.exited() {
		return fmt.Errorf("%s: already running (pid %d)", p.name, p.run.cmd.Process.Pid)
	}
	out, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.name, err)
	}
	defer out.Close() // the child has its own descriptor once started
	fmt.Fprintf(out, "\n==== testenv: starting %s at %s: %s %s\n", p.name, time.Now().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Dir = p.dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", p.name, p.path, err)
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	p.run = r
	return nil
}

func (p *process) current() *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run
}

// running reports whether the process is alive (a paused process is alive).
func (p *process) running() bool {
	r := p.current()
	return r != nil && !r.exited()
}

// pid is the process id of the current run, or 0.
func (p *process) pid() int {
	r := p.current()
	if r == nil || r.exited() {
		return 0
	}
	return r.cmd.Process.Pid
}

// signal sends sig to the process group of the current run.
func (p *process) signal(sig syscall.Signal) error {
	r := p.current()
	if r == nil || r.exited() {
		return fmt.Errorf("%s: not running", p.name)
	}
	if err := syscall.Kill(-r.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: signal %v: %w", p.name, sig, err)
	}
	return nil
}

// stop sends SIGTERM (and SIGCONT, in case it is paused) to the process group
// and waits for the exit; after grace, or when ctx ends, it sends SIGKILL.
// With grace 0 it sends SIGKILL at once. Stopping a stopped process is a no-op.
func (p *process) stop(ctx context.Context, grace time.Duration) error {
	r := p.current()
	if r == nil || r.exited() {
		return nil
	}
	pgid := r.cmd.Process.Pid
	if grace > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		_ = syscall.Kill(-pgid, syscall.SIGCONT)
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-r.done:
			return nil
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: pid %d did not exit after SIGKILL", p.name, pgid)
	}
	if grace > 0 {
		return fmt.Errorf("%s: did not stop within %s of SIGTERM; killed", p.name, grace)
	}
	return nil
}

// waitReady polls check every 50 ms until it returns nil, the process exits,
// or timeout passes. Its errors carry the tail of the given logs.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, what string, check func(context.Context) error, logs ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := p.current()
	if r == nil {
		return fmt.Errorf("%s: not started", p.name)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		// Each check gets a second, cut short if the process exits.
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		checked := make(chan struct{})
		go func() {
			select {
			case <-r.done:
				ccancel()
			case <-checked:
			}
		}()
		last = check(cctx)
		close(checked)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-r.done:
			return p.failure(fmt.Sprintf("exited (%v) before %s", r.err, what), logs)
		case <-ctx.Done():
			return p.failure(fmt.Sprintf("not %s after %s (last error: %v)", what, timeout, last), logs)
		case <-tick.C:
		}
	}
}

// failure builds an error with the tails of logs; it wraps errAddrInUse when
// a log says a bind failed.
func (p *process) failure(msg string, logs []string) error {
	logs = append([]string{p.logPath}, logs...)
	var b strings.Builder
	bind := false
	for _, l := range logs {
		tail := tailFile(l, 40)
		if tail == "" {
			continue
		}
		if isBindFailure(tail) {
			bind = true
		}
		fmt.Fprintf(&b, "\n--- tail of %s:\n%s", l, tail)
	}
	if bind {
		return fmt.Errorf("%s: %s: %w%s", p.name, msg, errAddrInUse, b.String())
	}
	return fmt.Errorf("%s: %s%s", p.name, msg, b.String())
}

func isBindFailure(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "address already in use") || strings.Contains(s, "bindexception") ||
		strings.Contains(s, "net exception: address already in use")
}

// tailFile returns the last n lines of the file at path (at most 16 KiB).
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 16 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct free TCP ports on 127.0.0.1, chosen at random
// below the kernel's ephemeral port range: a port from that range could be
// taken by any outgoing connection while its server is stopped for a restart.
// The ports are held open together, then released; another process can still
// bind one before the server does (Start retries once).
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	seen := map[int]bool{}
	lo, hi := portPoolLow, ephemeralLow()-1
	for attempt := 0; len(ports) < n && hi-lo >= 1000 && attempt < 50*n; attempt++ {
		p := lo + rand.IntN(hi-lo+1)
		if seen[p] {
			continue
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, p)
	}
	for len(ports) < n { // no room below the ephemeral range: let the kernel choose
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("allocate port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portPoolLow is the lowest port freePorts picks; below it live well-known
// services (ClickHouse's 8123/9000/9009, ZooKeeper's 2181, Alertmanager's 9093).
const portPoolLow = 10000

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > 0 {
				return lo
			}
		}
	}
	return 32768
}
