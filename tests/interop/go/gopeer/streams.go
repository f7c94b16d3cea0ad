package main

// multistream-select 1.0.0 and the two protocols served: /ipfs/ping/1.0.0, /echo/1.0.0.

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

const header = "/multistream/1.0.0"

// stream is what both quic-go and hashicorp/yamux streams offer; Close sends FIN.
type stream interface {
	io.ReadWriteCloser
}

func writeMsg(w io.Writer, msgs ...string) error {
	var out []byte
	for _, m := range msgs {
		out = append(append(out, uvarint(uint64(len(m)+1))...), m+"\n"...)
	}
	_, err := w.Write(out)
	return err
}

func readMsg(r io.Reader) (string, error) {
	n, shift := 0, 0
	b := make([]byte, 1)
	for i := 0; ; i++ {
		if i > 2 {
			return "", errors.New("length too long")
		}
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		n |= int(b[0]&0x7f) << shift
		shift += 7
		if b[0] < 0x80 {
			break
		}
	}
	if n == 0 || n > 1024 {
		return "", fmt.Errorf("bad message length %d", n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return "", err
	}
	if msg[n-1] != '\n' {
		return "", errors.New("message without newline")
	}
	return string(msg[:n-1]), nil
}

// selectProtocol is the dialer's side: header and proposal at once, then both echoes.
func selectProtocol(s io.ReadWriter, proto string) error {
	if err := writeMsg(s, header, proto); err != nil {
		return err
	}
	for _, want := range []string{header, proto} {
		got, err := readMsg(s)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("multistream: wanted %q, got %q", want, got)
		}
	}
	return nil
}

// answerProtocol is the listener's side: the first supported proposal, "na" to others.
func answerProtocol(s io.ReadWriter, supported ...string) (string, error) {
	if got, err := readMsg(s); err != nil || got != header {
		return "", fmt.Errorf("multistream header: %q %v", got, err)
	}
	if err := writeMsg(s, header); err != nil {
		return "", err
	}
	for i := 0; i < 8; i++ {
		proto, err := readMsg(s)
		if err != nil {
			return "", err
		}
		for _, p := range supported {
			if p == proto {
				return proto, writeMsg(s, proto)
			}
		}
		if err := writeMsg(s, "na"); err != nil {
			return "", err
		}
	}
	return "", errors.New("too many proposals")
}

func handleStream(s stream) {
	defer s.Close()
	proto, err := answerProtocol(s, "/ipfs/ping/1.0.0", "/echo/1.0.0")
	if err != nil {
		return
	}
	if proto == "/echo/1.0.0" {
		io.Copy(s, s) // to the peer's FIN; Close (deferred) sends ours
		return
	}
	buf := make([]byte, 32)
	for {
		if _, err := io.ReadFull(s, buf); err != nil {
			return
		}
		if _, err := s.Write(buf); err != nil {
			return
		}
	}
}

// exercise runs the dialer's checks on a connection: 3 pings, then streams concurrent
// echoes of size bytes.  open opens a new stream.  halfClose: FIN after the payload,
// then read the echo to the peer's FIN (quic-go); without it the echo is read back
// before closing, since this hashicorp/yamux reads nothing more once it has sent its
// FIN (go-libp2p's fork of it, go-yamux, half-closes; Debian has only the original).
func exercise(open func() (stream, error), streams, size int, halfClose bool) ([]float64, error) {
	s, err := open()
	if err != nil {
		return nil, err
	}
	if err := selectProtocol(s, "/ipfs/ping/1.0.0"); err != nil {
		return nil, err
	}
	var rtts []float64
	for i := 0; i < 3; i++ {
		out, in := make([]byte, 32), make([]byte, 32)
		rand.Read(out)
		t := time.Now()
		if _, err := s.Write(out); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(s, in); err != nil {
			return nil, err
		}
		if string(in) != string(out) {
			return nil, errors.New("ping: wrong bytes back")
		}
		rtts = append(rtts, float64(time.Since(t).Microseconds())/1000)
	}
	s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echo(open, size, halfClose)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return rtts, nil
}

func echo(open func() (stream, error), size int, halfClose bool) error {
	s, err := open()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := selectProtocol(s, "/echo/1.0.0"); err != nil {
		return err
	}
	payload := make([]byte, size)
	rand.Read(payload)
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(payload)
		if err == nil && halfClose {
			err = s.Close() // FIN: the echo ends with ours
		}
		werr <- err
	}()
	var got []byte
	if halfClose {
		got, err = io.ReadAll(s)
	} else {
		got = make([]byte, size)
		_, err = io.ReadFull(s, got)
	}
	if err != nil {
		return err
	}
	if err := <-werr; err != nil {
		return err
	}
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		return fmt.Errorf("echo: %d bytes back of %d, or different", len(got), size)
	}
	return nil
}
