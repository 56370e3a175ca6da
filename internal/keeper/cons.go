package keeper

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Conn is one client connection from "cons" (or, brief, from "stat").
//
// Connections without a session (HasSession false) are 4lw probes or
// clients still in the handshake; the probe that asked for cons is among
// them.
type Conn struct {
	Addr     string // canonical "ip:port" ("[::1]:52852" for IPv6), or as printed when unparsable
	IP       string // canonical IP ("10.0.0.1", "::1"; IPv4-mapped IPv6 unmapped)
	Port     int
	Interest string // ZooKeeper's "[1]" NIO interest-ops marker ("" on ClickHouse Keeper)

	Queued int64 // requests submitted but not answered (ZooKeeper only)
	Recved int64 // packets received from the client
	Sent   int64 // packets sent to the client

	SessionID   uint64 // sid; 0xffffffffffffffff on ClickHouse Keeper before the session exists
	HasSession  bool
	LastOp      string    // lop: PING, GETD, SETD, CREA, ... (ClickHouse Keeper: List, Get, ...)
	Established time.Time // est, a wall-clock time (UTC)
	Timeout     time.Duration
	LastCxid    uint64 // lcxid
	LastZxid    Zxid   // lzxid; 0xffffffffffffffff when none
	// LastResponse is lresp in milliseconds as printed: epoch ms on
	// ClickHouse Keeper, but a monotonic clock reading on ZooKeeper >= 3.4.6
	// (not comparable with wall time).
	LastResponse int64

	// Latencies in milliseconds.
	LastLatency, MinLatency, AvgLatency, MaxLatency float64

	Raw map[string]string // every key=value inside the parentheses
}

// isConnLine reports whether a trimmed line looks like a cons/stat client
// line: "<addr>[...](key=value,...)".
func isConnLine(t string) bool {
	i := strings.IndexByte(t, '(')
	return i > 0 && strings.HasSuffix(t, ")") &&
		(strings.Contains(t[i:], "recved=") || strings.Contains(t[i:], "queued="))
}

// ParseCons parses "cons" output from ZooKeeper or ClickHouse Keeper.
// Blank output is an empty list; output with lines but no parsable
// connection is an error.
func ParseCons(s string) ([]Conn, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if err := refusal("cons", s); err != nil {
		return nil, err
	}
	var out []Conn
	for _, ln := range lines(s) {
		t := strings.TrimSpace(ln)
		if t == "" || !isConnLine(t) {
			continue
		}
		if c, ok := parseConnLine(t); ok {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no connection lines in cons output", ErrMalformed)
	}
	return out, nil
}

func parseConnLine(t string) (Conn, bool) {
	open := strings.IndexByte(t, '(')
	if open <= 0 || !strings.HasSuffix(t, ")") {
		return Conn{}, false
	}
	addrPart, stats := strings.TrimSpace(t[:open]), t[open+1:len(t)-1]
	var c Conn
	c.Raw = map[string]string{}

	// ZooKeeper appends the interest-ops set in brackets: "...:52852[1]".
	if strings.HasSuffix(addrPart, "]") {
		if i := strings.LastIndexByte(addrPart, '['); i > 0 && isHex(addrPart[i+1:len(addrPart)-1]) && !strings.HasSuffix(addrPart[:i], ":") {
			// "[::1]:5" ends with a port digit before the marker; a bare
			// bracketed IPv6 without port would end with ':' or '['.
			c.Interest = addrPart[i+1 : len(addrPart)-1]
			addrPart = addrPart[:i]
		}
	}
	c.Addr = addrPart
	host, port := splitConnAddr(addrPart)
	if host != "" {
		if a, err := netip.ParseAddr(host); err == nil {
			host = a.Unmap().String()
		}
		c.IP = host
		if p, err := strconv.Atoi(port); err == nil {
			c.Port = p
			c.Addr = net.JoinHostPort(host, port)
		}
	}

	for _, kv := range strings.Split(stats, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		c.Raw[k] = v
		switch k {
		case "queued":
			c.Queued, _ = parseInt(v)
		case "recved":
			c.Recved, _ = parseInt(v)
		case "sent":
			c.Sent, _ = parseInt(v)
		case "sid":
			if id, ok := parseHexOrDec(v); ok {
				c.SessionID, c.HasSession = id, true
			}
		case "lop":
			c.LastOp = v
		case "est":
			if ms, ok := parseInt(v); ok && ms > 0 {
				c.Established = time.UnixMilli(ms).UTC()
			}
		case "to":
			if ms, ok := parseInt(v); ok {
				c.Timeout = time.Duration(ms) * time.Millisecond
			}
		case "lcxid":
			c.LastCxid, _ = parseHexOrDec(v)
		case "lzxid":
			z, _ := parseHexOrDec(v)
			c.LastZxid = Zxid(z)
		case "lresp":
			c.LastResponse, _ = parseInt(v)
		case "llat":
			c.LastLatency, _ = parseFloat(v)
		case "minlat":
			c.MinLatency, _ = parseFloat(v)
		case "avglat":
			c.AvgLatency, _ = parseFloat(v)
		case "maxlat":
			c.MaxLatency, _ = parseFloat(v)
		}
	}
	if len(c.Raw) == 0 {
		return Conn{}, false
	}
	return c, true
}

// splitConnAddr splits the printed remote address into host and port. It
// accepts Java's InetSocketAddress forms ("/1.2.3.4:5", "name/1.2.3.4:5",
// "/0:0:0:0:0:0:0:1:5" before Java 14, "/[0:0:0:0:0:0:0:1]:5" since) and
// Poco's ("1.2.3.4:5", "[::1]:5").
func splitConnAddr(a string) (host, port string) {
	if i := strings.LastIndexByte(a, '/'); i >= 0 {
		a = a[i+1:]
	}
	if a == "" || a == "null" {
		return "", ""
	}
	if h, p, err := net.SplitHostPort(a); err == nil {
		return h, p
	}
	// Unbracketed IPv6 with a port: the last colon starts the port.
	if i := strings.LastIndexByte(a, ':'); i > 0 && strings.Count(a, ":") > 1 {
		h, p := a[:i], a[i+1:]
		if _, err := netip.ParseAddr(h); err == nil {
			return h, p
		}
	}
	return a, ""
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return false
		}
	}
	return true
}

// CountByIP counts connections per client IP (the busiest clients are the
// usual suspects when a node nears maxClientCnxns). Connections whose
// address could not be parsed are counted under their printed address.
func CountByIP(conns []Conn) map[string]int {
	out := make(map[string]int)
	for _, c := range conns {
		k := c.IP
		if k == "" {
			k = c.Addr
		}
		out[k]++
	}
	return out
}
