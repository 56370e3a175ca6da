package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ZooKeeper is one standalone ZooKeeper server of the environment.
type ZooKeeper struct {
	Addr    string // "127.0.0.1:port", the client port
	Port    int
	Dir     string // conf/, data/ and the log live here
	LogPath string // the server's log (log4j to stdout)

	// Whitelist is the server's 4lw.commands.whitelist ("*": every word).
	Whitelist string

	proc   *process
	paused atomic.Bool
}

// zooKeeperReadyTimeout bounds the wait for ruok → imok after a start.
const zooKeeperReadyTimeout = 30 * time.Second

func newZooKeeper(dir string, port int, java string, classpath []string, whitelist string) (*ZooKeeper, error) {
	if whitelist == "" {
		whitelist = "*"
	}
	if strings.ContainsAny(whitelist, "\n\r") {
		return nil, fmt.Errorf("zookeeper whitelist %q: one line", whitelist)
	}
	z := &ZooKeeper{
		Addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Port:      port,
		Dir:       dir,
		LogPath:   filepath.Join(dir, "zookeeper.log"),
		Whitelist: whitelist,
	}
	conf := filepath.Join(dir, "conf")
	data := filepath.Join(dir, "data")
	for _, d := range []string{conf, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	cfg := strings.Join([]string{
		"tickTime=2000",
		"initLimit=10",
		"syncLimit=5",
		"dataDir=" + data,
		"clientPort=" + strconv.Itoa(port),
		"clientPortAddress=127.0.0.1",
		"maxClientCnxns=60",
		"minSessionTimeout=1000",
		"maxSessionTimeout=60000",
		"admin.enableServer=false",
		"4lw.commands.whitelist=" + whitelist,
		"preAllocSize=4096",
		"snapCount=100000",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(conf, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	log4j := strings.Join([]string{
		"log4j.rootLogger=INFO, CONSOLE",
		"log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender",
		"log4j.appender.CONSOLE.Threshold=INFO",
		"log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout",
		"log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(conf, "log4j.properties"), []byte(log4j), 0o644); err != nil {
		return nil, err
	}
	args := []string{
		"-Xmx256m",
		"-XX:+UseSerialGC",
		"-XX:TieredStopAtLevel=1",
		"-Djava.net.preferIPv4Stack=true",
		"-Dzookeeper.log.dir=" + dir,
		"-Dzookeeper.root.logger=INFO,CONSOLE",
		"-Dlog4j.configuration=file:" + filepath.Join(conf, "log4j.properties"),
		"-Dzookeeper.forceSync=no",
		"-Dzookeeper.jmx.log4j.disable=true",
		"-cp", strings.Join(append([]string{conf}, classpath...), ":"),
		"org.apache.zookeeper.server.ZooKeeperServerMain",
		filepath.Join(conf, "zoo.cfg"),
	}
	z.proc = &process{name: "zookeeper", path: java, args: args, dir: dir, logPath: z.LogPath}
	return z, nil
}

// Start starts the server (again) on the same port and data, and waits until
// it answers ruok with imok and srvr with its mode (it then takes sessions).
func (z *ZooKeeper) Start(ctx context.Context) error {
	z.paused.Store(false)
	if err := z.proc.start(); err != nil {
		return err
	}
	return z.proc.waitReady(ctx, zooKeeperReadyTimeout, "serving on "+z.Addr, z.serving)
}

// serving checks that the server takes sessions: ruok answers imok as soon as
// the port is bound, before the server is running (a session handshake is
// then dropped), while srvr says "not currently serving requests" until it is.
// Words the whitelist refuses are not asked (srvr is in ZooKeeper's default
// whitelist; with neither word allowed any answer will do).
func (z *ZooKeeper) serving(ctx context.Context) error {
	if !z.Allows("srvr") {
		if z.Allows("ruok") {
			return z.ruok(ctx)
		}
		_, err := z.FourLetterWord(ctx, "srvr")
		return err
	}
	if z.Allows("ruok") {
		if err := z.ruok(ctx); err != nil {
			return err
		}
	}
	out, err := z.FourLetterWord(ctx, "srvr")
	if err != nil {
		return err
	}
	if !strings.Contains(out, "Mode: ") {
		return fmt.Errorf("zookeeper %s: srvr answered %q", z.Addr, strings.TrimSpace(out))
	}
	return nil
}

// Stop stops the server with SIGTERM (SIGKILL after a bound) and waits for it.
func (z *ZooKeeper) Stop(ctx context.Context) error {
	defer z.paused.Store(false)
	return z.proc.stop(ctx, stopGrace)
}

// Kill stops the server with SIGKILL.
func (z *ZooKeeper) Kill(ctx context.Context) error {
	defer z.paused.Store(false)
	return z.proc.stop(ctx, 0)
}

// Pause freezes the server with SIGSTOP: connections stay open, nothing is
// answered (a hung ZooKeeper).
func (z *ZooKeeper) Pause() error {
	if err := z.proc.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	z.paused.Store(true)
	// kill(2) returns before the process is stopped: wait until the kernel
	// reports it stopped, so that the caller's next request meets a hung
	// server, not one finishing its last instructions.
	pid := z.Pid()
	deadline := time.Now().Add(2 * time.Second)
	for pid > 0 && time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		// The state follows the parenthesised command name.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// Resume undoes Pause with SIGCONT.
func (z *ZooKeeper) Resume() error {
	if err := z.proc.signal(syscall.SIGCONT); err != nil {
		return err
	}
	z.paused.Store(false)
	return nil
}

// Running reports whether the server process is alive (also when paused).
func (z *ZooKeeper) Running() bool { return z.proc.running() }

// Paused reports whether Pause was called without Resume since.
func (z *ZooKeeper) Paused() bool { return z.paused.Load() }

// Pid is the server's process id, or 0 when it is not running.
func (z *ZooKeeper) Pid() int { return z.proc.pid() }

// FourLetterWord sends a four-letter command (ruok, srvr, mntr, ...) and
// returns the whole reply.
func (z *ZooKeeper) FourLetterWord(ctx context.Context, cmd string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", z.Addr)
	if err != nil {
		return "", fmt.Errorf("zookeeper %s: %s: %w", z.Addr, cmd, err)
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	_ = conn.SetDeadline(deadline)
	if _, err := io.WriteString(conn, cmd); err != nil {
		return "", fmt.Errorf("zookeeper %s: %s: %w", z.Addr, cmd, err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		return string(out), fmt.Errorf("zookeeper %s: %s: %w", z.Addr, cmd, err)
	}
	return string(out), nil
}

func (z *ZooKeeper) ruok(ctx context.Context) error {
	out, err := z.FourLetterWord(ctx, "ruok")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "imok" {
		return fmt.Errorf("zookeeper %s: ruok answered %q", z.Addr, out)
	}
	return nil
}

// Ruok reports nil when the server answers ruok with imok.
func (z *ZooKeeper) Ruok(ctx context.Context) error { return z.ruok(ctx) }

// Allows reports whether the server's whitelist allows the word.
func (z *ZooKeeper) Allows(word string) bool {
	for _, w := range strings.Split(z.Whitelist, ",") {
		if w = strings.TrimSpace(w); w == "*" || w == word {
			return true
		}
	}
	return false
}

// Alive reports nil when the server answers as a running server does
// (ruok → imok where the whitelist allows ruok, else srvr's Mode).
func (z *ZooKeeper) Alive(ctx context.Context) error { return z.serving(ctx) }
