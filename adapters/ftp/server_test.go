package ftp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	ftpserver "goftp.io/server/v2"
	"goftp.io/server/v2/driver/file"
)

// testServer is a real FTP server (goftp.io/server/v2 over a folder)
// on a loopback port, that a test can stop and start again on the same
// port, and whose connections it can cut.
type testServer struct {
	t      *testing.T
	root   string
	addr   string
	driver *dropDriver

	mu    sync.Mutex
	srv   *ftpserver.Server
	ln    net.Listener
	conns map[net.Conn]bool
	done  chan struct{}
}

const (
	testUser = "svc"
	testPass = "s3cret"
)

// startServer starts a server over a new temporary folder.
func startServer(t *testing.T) *testServer {
	t.Helper()
	root := t.TempDir()
	d, err := file.NewDriver(root)
	require.NoError(t, err)
	s := &testServer{t: t, root: root, driver: &dropDriver{Driver: d}}
	s.driver.cut = s.cut
	s.start("127.0.0.1:0")
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) start(addr string) {
	s.t.Helper()
	srv, err := ftpserver.NewServer(&ftpserver.Options{
		Driver:   s.driver,
		Auth:     &ftpserver.SimpleAuth{Name: testUser, Password: testPass},
		Perm:     ftpserver.NewSimplePerm("root", "root"),
		Hostname: "127.0.0.1",
		Logger:   &ftpserver.DiscardLogger{},
	})
	require.NoError(s.t, err)
	ln, err := net.Listen("tcp", addr)
	require.NoError(s.t, err)
	s.mu.Lock()
	s.srv, s.ln, s.addr, s.conns, s.done = srv, ln, ln.Addr().String(), map[net.Conn]bool{}, make(chan struct{})
	done := s.done
	s.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(&trackListener{Listener: ln, s: s})
	}()
}

// stop closes the listener and every connection, and waits for the
// server's accept loop.
func (s *testServer) stop() {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	_ = srv.Shutdown()
	s.cut()
	<-done
}

// restart stops the server and starts it again on the same port.
func (s *testServer) restart() {
	s.stop()
	s.start(s.addr)
}

// cut closes every client connection.
func (s *testServer) cut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
	clear(s.conns)
}

func (s *testServer) put(t *testing.T, name, content string) {
	t.Helper()
	p := filepath.Join(s.root, filepath.FromSlash(name))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

func (s *testServer) exists(name string) bool {
	_, err := os.Stat(filepath.Join(s.root, filepath.FromSlash(name)))
	return err == nil
}

type trackListener struct {
	net.Listener
	s *testServer
}

func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.s.mu.Lock()
		l.s.conns[c] = true
		l.s.mu.Unlock()
	}
	return c, err
}

// dropDriver is the file driver, which can cut a download midway: the
// first download of the file named dropOn sends half the file, then the
// server's connections are closed.
type dropDriver struct {
	ftpserver.Driver
	cut func()

	mu      sync.Mutex
	dropOn  string
	dropped int
	gets    map[string]int
}

func (d *dropDriver) GetFile(ctx *ftpserver.Context, path string, offset int64) (int64, io.ReadCloser, error) {
	n, rc, err := d.Driver.GetFile(ctx, path, offset)
	if err != nil {
		return n, rc, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gets == nil {
		d.gets = map[string]int{}
	}
	d.gets[path]++
	if d.dropOn != "" && path == d.dropOn && d.dropped == 0 {
		d.dropped++
		return n, &halfReader{rc: rc, left: n / 2, cut: d.cut}, nil
	}
	return n, rc, nil
}

func (d *dropDriver) downloads(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gets[path]
}

type halfReader struct {
	rc   io.ReadCloser
	left int64
	cut  func()
}

func (r *halfReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		r.cut()
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.rc.Read(p)
	r.left -= int64(n)
	return n, err
}

func (r *halfReader) Close() error { return r.rc.Close() }

// startTLSServer starts a server that speaks TLS, explicit (AUTH TLS) or
// implicit (explicit false), with a self-signed certificate for 127.0.0.1.
func startTLSServer(t *testing.T, explicit bool) (root, addr string) {
	t.Helper()
	root = t.TempDir()
	d, err := file.NewDriver(root)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	srv, err := ftpserver.NewServer(&ftpserver.Options{
		Driver:       d,
		Auth:         &ftpserver.SimpleAuth{Name: testUser, Password: testPass},
		Perm:         ftpserver.NewSimplePerm("root", "root"),
		Hostname:     "127.0.0.1",
		Port:         port,
		TLS:          true,
		ExplicitFTPS: explicit,
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}},
		Logger:       &ftpserver.DiscardLogger{},
	})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.ListenAndServe()
	}()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 5*time.Second, 5*time.Millisecond)
	return root, addr
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
