package ftp_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	ftpserver "goftp.io/server/v2"
	"goftp.io/server/v2/driver/file"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/ftp"
	"github.com/svcflow/svcflow/adapters/message"
)

func ExampleNew() {
	// An FTP server on a loopback port, serving a folder with one file.
	root, _ := os.MkdirTemp("", "ftp")
	defer os.RemoveAll(root)
	_ = os.MkdirAll(filepath.Join(root, "outgoing"), 0o755)
	_ = os.WriteFile(filepath.Join(root, "outgoing", "order-1.json"), []byte(`{"order": 1}`), 0o644)
	driver, _ := file.NewDriver(root)
	srv, _ := ftpserver.NewServer(&ftpserver.Options{Driver: driver, Perm: ftpserver.NewSimplePerm("root", "root"),
		Auth: &ftpserver.SimpleAuth{Name: "orders", Password: "secret"}, Logger: &ftpserver.DiscardLogger{}})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	defer func() { _ = srv.Shutdown(); <-served }()

	src, err := ftp.New(ftp.Spec{
		Address:  ln.Addr().String(),
		User:     "orders",
		Password: "secret",
		Folder:   "/outgoing",
		Regex:    `^order-\d+\.json$`,
		After:    ftp.AfterMove, // to /outgoing/done
		Every:    10 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	// Usually a channel runs the source; here a HandlerFunc takes one file.
	err = src.Run(ctx, channel.HandlerFunc(func(_ context.Context, m *message.Message) channel.Result {
		fmt.Println(m.Meta[ftp.MetaPath], m.ContentType, string(m.Payload))
		stop()
		return channel.Result{Settle: channel.Ack, State: "done", Message: m}
	}))
	fmt.Println("run:", err)
	_, err = os.Stat(filepath.Join(root, "outgoing", "done", "order-1.json"))
	fmt.Println("moved:", err == nil)
	// Output:
	// /outgoing/order-1.json application/json {"order": 1}
	// run: <nil>
	// moved: true
}
