package localstack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// S3 credentials of the local versitygw, MinIO-style.
const (
	S3AccessKey = "minioadmin"
	S3SecretKey = "minioadmin"
)

// S3Server is a running versitygw (a real S3 server) with its posix backend.
type S3Server struct {
	Dir  string
	Port int
	proc *proc
}

// StartS3 starts versitygw serving dir. The binary is looked up in PATH and
// in the project's tools directory (installed by scripts/bootstrap.sh).
func StartS3(ctx context.Context, dir string, toolsDirs ...string) (*S3Server, error) {
	bin, err := findBinary("versitygw", toolsDirs...)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &S3Server{Dir: dir, Port: port}
	args := []string{"--access", S3AccessKey, "--secret", S3SecretKey, "--port", s.addr(), "posix", data}
	s.proc, err = startProc("versitygw", bin, args, filepath.Join(dir, "versitygw.log"), nil)
	if err != nil {
		return nil, err
	}
	return s, s.proc.waitReady(ctx, 20*time.Second, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", s.addr())
		if err != nil {
			return err
		}
		return c.Close()
	})
}

func (s *S3Server) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// Endpoint is the http:// endpoint.
func (s *S3Server) Endpoint() string { return "http://" + s.addr() }

// Stop shuts the server down.
func (s *S3Server) Stop() { s.proc.stop(syscall.SIGTERM, 10*time.Second) }
