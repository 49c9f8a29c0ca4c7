package api

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// http2Preface opens every HTTP/2 connection; gRPC clients speak HTTP/2
// with prior knowledge, so the first bytes tell the two protocols apart.
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// ClientPort serves gRPC and HTTP on one listener, like etcd's cmux setup:
// gRPC through grpc-go's own server (much faster than ServeHTTP), HTTP/1
// through net/http.
type ClientPort struct {
	ln      net.Listener
	grpcL   *chanListener
	httpL   *chanListener
	grpcSrv *grpc.Server
	httpSrv *http.Server
	wg      sync.WaitGroup
}

// NewClientPort prepares serving on ln.
func NewClientPort(ln net.Listener, g *grpc.Server, h http.Handler) *ClientPort {
	return &ClientPort{
		ln:      ln,
		grpcL:   newChanListener(ln.Addr()),
		httpL:   newChanListener(ln.Addr()),
		grpcSrv: g,
		httpSrv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
	}
}

// Serve blocks until the listener is closed.
func (p *ClientPort) Serve() error {
	p.wg.Add(2)
	go func() { defer p.wg.Done(); p.grpcSrv.Serve(p.grpcL) }()
	go func() { defer p.wg.Done(); p.httpSrv.Serve(p.httpL) }()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			p.grpcL.close()
			p.httpL.close()
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go p.route(c)
	}
}

func (p *ClientPort) route(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, len(http2Preface))
	head, err := br.Peek(len(http2Preface))
	c.SetReadDeadline(time.Time{})
	if err != nil && len(head) == 0 {
		c.Close()
		return
	}
	pc := &peekedConn{Conn: c, r: br}
	if bytes.Equal(head, http2Preface) {
		p.grpcL.deliver(pc)
	} else {
		p.httpL.deliver(pc)
	}
}

// Close stops accepting; in-flight HTTP requests are not waited for.
func (p *ClientPort) Close() error {
	err := p.ln.Close()
	p.httpSrv.Close()
	return err
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// chanListener is a net.Listener fed by the router.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) close() { l.closed.Do(func() { close(l.done) }) }

func (l *chanListener) Close() error   { l.close(); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// ServeTLS serves an https client port: one net/http server speaking HTTP/1
// and HTTP/2, handing gRPC requests to g and the rest to h, as etcd does
// for TLS client ports.
func ServeTLS(ln net.Listener, cfg *tls.Config, g *grpc.Server, h http.Handler, errorLog *log.Logger) *http.Server {
	hs := &http.Server{
		TLSConfig:         cfg,
		ErrorLog:          errorLog,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				g.ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(w, r)
		}),
	}
	go hs.ServeTLS(ln, "", "")
	return hs
}
