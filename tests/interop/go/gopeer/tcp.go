package main

// TCP + Noise + yamux, as go-libp2p builds it: multistream-select "/noise" on the raw
// connection, the Noise XX handshake of the noise spec on flynn/noise (go-libp2p's
// Noise library) with the libp2p handshake payload, multistream-select "/yamux/1.0.0"
// inside, then hashicorp/yamux (the yamux spec's reference).

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/flynn/noise"
	"github.com/hashicorp/yamux"
)

const noisePrefix = "noise-libp2p-static-key:"

var suite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

// noiseConn is the secured channel: 2-byte length-prefixed ChaChaPoly frames.
type noiseConn struct {
	raw      net.Conn
	enc, dec *noise.CipherState
	rbuf     []byte
	wmu      sync.Mutex
}

func readFrame(r io.Reader) ([]byte, error) {
	var size [2]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	frame := make([]byte, binary.BigEndian.Uint16(size[:]))
	_, err := io.ReadFull(r, frame)
	return frame, err
}

func writeFrame(w io.Writer, frame []byte) error {
	_, err := w.Write(append([]byte{byte(len(frame) >> 8), byte(len(frame))}, frame...))
	return err
}

func (c *noiseConn) Read(p []byte) (int, error) {
	for len(c.rbuf) == 0 {
		frame, err := readFrame(c.raw)
		if err != nil {
			return 0, err
		}
		if c.rbuf, err = c.dec.Decrypt(nil, nil, frame); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

func (c *noiseConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	total := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > 65535-16 {
			chunk = p[:65535-16]
		}
		frame, err := c.enc.Encrypt(nil, nil, chunk)
		if err != nil {
			return total, err
		}
		if err := writeFrame(c.raw, frame); err != nil {
			return total, err
		}
		total += len(chunk)
		p = p[len(chunk):]
	}
	return total, nil
}

func (c *noiseConn) Close() error { return c.raw.Close() }

// secure runs the Noise XX handshake; the channel and the remote's peer id.
func secure(me *identity, raw net.Conn, initiator bool) (*noiseConn, string, error) {
	static, err := suite.GenerateKeypair(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: suite, Random: rand.Reader, Pattern: noise.HandshakeXX,
		Initiator: initiator, StaticKeypair: static,
	})
	if err != nil {
		return nil, "", err
	}
	sig := ed25519.Sign(me.key, append([]byte(noisePrefix), static.Public...))
	// identity_key = 1, identity_sig = 2, extensions = 4 (empty: no early muxer)
	payload := append(append(protoField(0x0a, me.encoded), protoField(0x12, sig)...), protoField(0x22, nil)...)
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	defer raw.SetDeadline(time.Time{})
	var remote []byte
	var cs1, cs2 *noise.CipherState
	if initiator {
		msg, _, _, err := hs.WriteMessage(nil, nil)
		if err == nil {
			err = writeFrame(raw, msg)
		}
		if err == nil {
			msg, err = readFrame(raw)
		}
		if err == nil {
			remote, _, _, err = hs.ReadMessage(nil, msg)
		}
		if err == nil {
			msg, cs1, cs2, err = hs.WriteMessage(nil, payload)
		}
		if err == nil {
			err = writeFrame(raw, msg)
		}
		if err != nil {
			return nil, "", err
		}
	} else {
		msg, err := readFrame(raw)
		if err == nil {
			_, _, _, err = hs.ReadMessage(nil, msg)
		}
		if err == nil {
			msg, _, _, err = hs.WriteMessage(nil, payload)
		}
		if err == nil {
			err = writeFrame(raw, msg)
		}
		if err == nil {
			msg, err = readFrame(raw)
		}
		if err == nil {
			remote, cs1, cs2, err = hs.ReadMessage(nil, msg)
		}
		if err != nil {
			return nil, "", err
		}
		cs1, cs2 = cs2, cs1 // the responder encrypts with the second
	}
	fields, err := protoFields(remote)
	if err != nil || len(fields[1]) != 1 || len(fields[2]) != 1 {
		return nil, "", errors.New("bad handshake payload")
	}
	if err := verify(fields[1][0], append([]byte(noisePrefix), hs.PeerStatic()...), fields[2][0]); err != nil {
		return nil, "", err
	}
	return &noiseConn{raw: raw, enc: cs1, dec: cs2}, peerID(fields[1][0]), nil
}

func yamuxConfig() *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	return cfg
}

func listenTCP(me *identity) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Printf("LISTEN /ip4/127.0.0.1/tcp/%d/p2p/%s\n", port, me.id)
	for {
		raw, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			if err := serveTCP(me, raw); err != nil {
				fmt.Printf("FAILED %q\n", err.Error())
				raw.Close()
			}
		}()
	}
}

func serveTCP(me *identity, raw net.Conn) error {
	if _, err := answerProtocol(raw, "/noise"); err != nil {
		return err
	}
	conn, remote, err := secure(me, raw, false)
	if err != nil {
		return err
	}
	if _, err := answerProtocol(conn, "/yamux/1.0.0"); err != nil {
		return err
	}
	session, err := yamux.Server(conn, yamuxConfig())
	if err != nil {
		return err
	}
	emit("CONNECTION", map[string]string{"remote_peer": remote, "security": "/noise", "muxer": "/yamux/1.0.0"})
	for {
		s, err := session.AcceptStream()
		if err != nil {
			return nil
		}
		go handleStream(s)
	}
}

func dialTCP(me *identity, host, port, want string, streams, size int) error {
	start := time.Now()
	raw, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 10*time.Second)
	if err != nil {
		return err
	}
	defer raw.Close()
	if err := selectProtocol(raw, "/noise"); err != nil {
		return err
	}
	conn, remote, err := secure(me, raw, true)
	if err != nil {
		return err
	}
	if remote != want {
		return fmt.Errorf("dialled %s, the handshake says %s", want, remote)
	}
	if err := selectProtocol(conn, "/yamux/1.0.0"); err != nil {
		return err
	}
	session, err := yamux.Client(conn, yamuxConfig())
	if err != nil {
		return err
	}
	open := func() (stream, error) { return session.OpenStream() }
	rtts, err := exercise(open, streams, size, false)
	if err != nil {
		return err
	}
	emit("RESULT", map[string]interface{}{
		"remote_peer": remote, "local_peer": me.id, "ping_ms": rtts, "echo_streams": streams,
		"echo_bytes": size, "security": "/noise", "muxer": "/yamux/1.0.0",
		"seconds": time.Since(start).Seconds(),
	})
	return session.Close()
}
