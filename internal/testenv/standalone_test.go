package testenv

import (
	"net"
	"testing"
	"time"
)

func TestHungServerAcceptsAndNeverAnswers(t *testing.T) {
	h, err := StartHungServer()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", h.Addr, time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ruok")); err != nil {
		t.Fatalf("write: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 8)
	if n, err := c.Read(buf); n != 0 || err == nil {
		t.Fatalf("read %d bytes (%q), err %v: a hung server answers nothing", n, buf[:n], err)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read: %v, want a timeout", err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed: the accepted connection is closed too.
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Error("connection still open after Close")
	}
	addr, err := ClosedAddress()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s accepted a connection", addr)
	}
}
