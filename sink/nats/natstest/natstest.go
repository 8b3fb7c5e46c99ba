// Package natstest runs an embedded nats-server with JetStream for tests,
// on a fixed port and store directory, so that Stop and Start bring it
// back "in the same place", as a restarted broker would be.
package natstest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is one embedded nats-server; Start and Stop may be repeated.
type Server struct {
	t     testing.TB
	port  int
	store string
	conf  func(*server.Options)
	srv   *server.Server
}

// New returns a server that is not running yet (Start starts it), with a
// free loopback port and a store directory of its own; it is shut down in
// t's cleanup. conf, if not nil, adjusts its options (auth, permissions).
func New(t testing.TB, conf func(*server.Options)) *Server {
	t.Helper()
	s := &Server{t: t, port: freePort(t), store: t.TempDir(), conf: conf}
	t.Cleanup(s.Stop)
	return s
}

// Start returns a running New(t, conf).
func Start(t testing.TB, conf func(*server.Options)) *Server {
	t.Helper()
	s := New(t, conf)
	s.Start()
	return s
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts the server and waits until it accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	s.startAsync()
	s.waitReady()
}

func (s *Server) startAsync() {
	s.t.Helper()
	o := &server.Options{
		Host:      "127.0.0.1",
		Port:      s.port,
		JetStream: true,
		StoreDir:  s.store,
		NoLog:     true,
		NoSigs:    true,
	}
	if s.conf != nil {
		s.conf(o)
	}
	srv, err := server.NewServer(o)
	if err != nil {
		s.t.Fatal(err)
	}
	srv.Start()
	s.srv = srv
}

func (s *Server) waitReady() {
	s.t.Helper()
	if !s.srv.ReadyForConnections(10 * time.Second) {
		s.Stop()
		s.t.Fatal("nats-server not ready")
	}
}

// Stop shuts the server down and waits until it is; a stopped server is
// left as it is.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// URL is the server's client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// Client is a plain connection for the test's own subscribing and
// inspecting, closed in t's cleanup.
func (s *Server) Client(t testing.TB, opts ...natsgo.Option) *natsgo.Conn {
	t.Helper()
	nc, err := natsgo.Connect(s.URL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream is a JetStream context over a new Client.
func (s *Server) JetStream(t testing.TB, opts ...natsgo.Option) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(s.Client(t, opts...))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// StreamMsgs is how many messages stream holds.
func StreamMsgs(t testing.TB, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// Cluster starts n servers (n >= 2) forming one JetStream cluster named
// "rollcall", each with its own client port, route port and store, and
// waits until JetStream has a meta leader. Each may be stopped and
// started again; all are shut down in t's cleanup.
func Cluster(t testing.TB, n int, conf func(*server.Options)) []*Server {
	t.Helper()
	routePorts := make([]int, n)
	for i := range routePorts {
		routePorts[i] = freePort(t)
	}
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	servers := make([]*Server, n)
	for i := range servers {
		i := i
		servers[i] = New(t, func(o *server.Options) {
			o.ServerName = fmt.Sprintf("n%d", i)
			o.Cluster = server.ClusterOpts{Name: "rollcall", Host: "127.0.0.1", Port: routePorts[i]}
			o.Routes = routes
			if conf != nil {
				conf(o)
			}
		})
	}
	// Start them together: each waits for its routes, not for the others
	// to be ready.
	for _, s := range servers {
		s.startAsync()
	}
	for _, s := range servers {
		s.waitReady()
	}
	// Every pair routed directly (else stopping one server may cut the
	// others apart) and a meta leader elected.
	ready := func() bool {
		leader := false
		for _, s := range servers {
			if s.srv.NumRemotes() != n-1 {
				return false
			}
			leader = leader || s.srv.JetStreamIsLeader()
		}
		return leader
	}
	for deadline := time.Now().Add(20 * time.Second); !ready(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("jetstream cluster not formed")
		}
	}
	return servers
}
