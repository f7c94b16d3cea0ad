// yamuxperf: hashicorp/yamux reference for compare.py --go.
//
// Plain yamux over TCP (no security, no multistream-select), one stream, a
// variant of the /perf/1.0.0 exchange: the client writes two big-endian u64s
// (bytes it will upload, bytes it wants back), uploads, then reads to EOF; the
// server reads exactly the upload, sends the requested bytes (or one ack byte if
// none were asked for) and closes. Why not perf's half-close: Debian's yamux
// (git 2019-09) returns EOF from Read as soon as the local side has closed, so a
// half-closed stream cannot read the reply. The quantity is the same as for the
// other clients: compare.py uses upload_seconds + download_seconds, which runs
// from the first byte written until EOF, i.e. until the other side has consumed
// everything.
//
//	yamuxperf listen [-window BYTES]        prints "LISTEN /ip4/127.0.0.1/tcp/PORT"
//	yamuxperf perf ADDR -upload N -download N [-window BYTES]   prints one JSON line
//
// -window sets MaxStreamWindowSize (hashicorp default 256 KiB); it is what the
// *receiving* side advertises, so set it on both processes.
//
// Built with Debian's golang-go and golang-github-hashicorp-yamux-dev
// (GO111MODULE=off GOPATH=/usr/share/gocode), see benchmarks/README.md.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
)

const block = 1 << 20

var zeros = make([]byte, block)

func config(window uint32) *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = false
	c.LogOutput = ioutil.Discard
	if window > 0 {
		c.MaxStreamWindowSize = window
	}
	return c
}

func send(w io.Writer, n uint64) error {
	for n > 0 {
		k := uint64(block)
		if n < k {
			k = n
		}
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func serve(conn net.Conn, window uint32) {
	defer conn.Close()
	sess, err := yamux.Server(conn, config(window))
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		return
	}
	defer sess.Close()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		go func(st *yamux.Stream) {
			defer st.Close()
			var hdr [16]byte
			if _, err := io.ReadFull(st, hdr[:]); err != nil {
				fmt.Fprintln(os.Stderr, "server header:", err)
				return
			}
			up := int64(binary.BigEndian.Uint64(hdr[:8]))
			if _, err := io.CopyN(ioutil.Discard, st, up); err != nil {
				fmt.Fprintln(os.Stderr, "server drain:", err)
				return
			}
			down := binary.BigEndian.Uint64(hdr[8:])
			if down == 0 {
				down = 1 // ack: tells the client everything was consumed
			}
			if err := send(st, down); err != nil {
				fmt.Fprintln(os.Stderr, "server send:", err)
			}
		}(st)
	}
}

func listen(window uint32) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Printf("LISTEN /ip4/127.0.0.1/tcp/%d\n", port)
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go serve(conn, window)
	}
}

func hostPort(maddr string) (string, error) {
	// /ip4/127.0.0.1/tcp/PORT[/...]
	p := strings.Split(maddr, "/")
	if len(p) < 5 || p[1] != "ip4" || p[3] != "tcp" {
		return "", fmt.Errorf("unsupported address %q", maddr)
	}
	return net.JoinHostPort(p[2], p[4]), nil
}

func perf(maddr string, upload, download uint64, window uint32) error {
	addr, err := hostPort(maddr)
	if err != nil {
		return err
	}
	t0 := time.Now()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	sess, err := yamux.Client(conn, config(window))
	if err != nil {
		return err
	}
	defer sess.Close()
	st, err := sess.OpenStream()
	if err != nil {
		return err
	}
	connectMs := float64(time.Since(t0).Microseconds()) / 1000
	start := time.Now()
	var hdr [16]byte
	binary.BigEndian.PutUint64(hdr[:8], upload)
	binary.BigEndian.PutUint64(hdr[8:], download)
	if _, err := st.Write(hdr[:]); err != nil {
		return err
	}
	if err := send(st, upload); err != nil {
		return err
	}
	mid := time.Now()
	got, err := io.Copy(ioutil.Discard, st)
	if err != nil {
		return err
	}
	end := time.Now()
	want := download
	if want == 0 {
		want = 1 // the server's ack byte
	}
	if uint64(got) != want {
		return fmt.Errorf("asked for %d bytes, got %d", want, got)
	}
	if download == 0 {
		got = 0
	}
	st.Close()
	up, down := mid.Sub(start).Seconds(), end.Sub(mid).Seconds()
	out := map[string]interface{}{
		"upload_bytes": upload, "upload_seconds": up,
		"download_bytes": got, "download_seconds": down,
		"connect_ms": connectMs,
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: yamuxperf listen|perf ...")
		os.Exit(2)
	}
	op := os.Args[1]
	fs := flag.NewFlagSet(op, flag.ExitOnError)
	window := fs.Uint("window", 0, "MaxStreamWindowSize (0: hashicorp default, 256 KiB)")
	upload := fs.Uint64("upload", 0, "bytes to upload")
	download := fs.Uint64("download", 0, "bytes to download")
	var err error
	switch op {
	case "listen":
		fs.Parse(os.Args[2:])
		err = listen(uint32(*window))
	case "perf":
		if len(os.Args) < 3 {
			err = fmt.Errorf("perf needs an address")
			break
		}
		fs.Parse(os.Args[3:])
		err = perf(os.Args[2], *upload, *download, uint32(*window))
	default:
		err = fmt.Errorf("unknown op %q", op)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
