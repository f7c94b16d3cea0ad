// quicpeer: a libp2p peer over QUIC written on quic-go (the QUIC of go-libp2p), for
// tests/interop/test_quic_go.py.  Only what a libp2p QUIC connection needs, from the
// specs: the libp2p TLS certificate (tls/tls.md) on both sides, the peer id of the
// remote's certificate, multistream-select 1.0.0 per stream, /ipfs/ping/1.0.0 and
// /echo/1.0.0.  Built offline from Debian's packages in GOPATH mode (no go-libp2p
// there).
//
//	quicpeer listen                      print LISTEN <multiaddr>, serve ping and echo
//	quicpeer dial <multiaddr> <streams> <bytes>
//	                                     ping 3 times, echo <bytes> on <streams>
//	                                     concurrent streams (half-close), print RESULT
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	quic "github.com/lucas-clemente/quic-go"
)

var extensionID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 1}

const certPrefix = "libp2p-tls-handshake:"

type signedKey struct {
	PubKey    []byte
	Signature []byte
}

// -- keys and peer ids (peer-ids spec) ---------------------------------------------------

func protoField(tag byte, data []byte) []byte {
	out := []byte{tag}
	n := uint64(len(data))
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	return append(append(out, byte(n)), data...)
}

// The PublicKey protobuf: field 1 KeyType (varint), field 2 Data (bytes).
func encodePublicKey(keyType byte, data []byte) []byte {
	return append([]byte{0x08, keyType}, protoField(0x12, data)...)
}

func decodePublicKey(b []byte) (byte, []byte, error) {
	if len(b) < 4 || b[0] != 0x08 || b[2] != 0x12 {
		return 0, nil, errors.New("bad PublicKey protobuf")
	}
	n, shift, i := 0, 0, 3
	for ; i < len(b); i++ {
		n |= int(b[i]&0x7f) << shift
		shift += 7
		if b[i] < 0x80 {
			i++
			break
		}
	}
	if i+n != len(b) {
		return 0, nil, errors.New("bad PublicKey length")
	}
	return b[1], b[i:], nil
}

const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

func base58(b []byte) string {
	x := new(big.Int).SetBytes(b)
	mod, zero, base := new(big.Int), big.NewInt(0), big.NewInt(58)
	var out []byte
	for x.Cmp(zero) > 0 {
		x.DivMod(x, base, mod)
		out = append(out, alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

func peerID(encodedKey []byte) string {
	if len(encodedKey) <= 42 { // identity multihash
		return base58(append([]byte{0x00, byte(len(encodedKey))}, encodedKey...))
	}
	sum := sha256.Sum256(encodedKey)
	return base58(append([]byte{0x12, 0x20}, sum[:]...))
}

// -- the libp2p certificate (tls spec) ------------------------------------------------------

func makeCertificate(host ed25519.PrivateKey) (tls.Certificate, string, error) {
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	spki, err := x509.MarshalPKIXPublicKey(&certKey.PublicKey)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	encoded := encodePublicKey(1, host.Public().(ed25519.PublicKey))
	value, err := asn1.Marshal(signedKey{
		PubKey:    encoded,
		Signature: ed25519.Sign(host, append([]byte(certPrefix), spki...)),
	})
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	template := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{SerialNumber: serial.String()},
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        time.Now().Add(100 * 365 * 24 * time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: extensionID, Critical: true, Value: value}},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &certKey.PublicKey, certKey)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: certKey}, peerID(encoded), nil
}

// remotePeer checks the peer's certificate as the tls spec asks and returns its peer id.
func remotePeer(chain []*x509.Certificate) (string, error) {
	if len(chain) != 1 {
		return "", fmt.Errorf("expected one certificate, got %d", len(chain))
	}
	cert := chain[0]
	now := time.Now()
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return "", errors.New("certificate not valid now")
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return "", fmt.Errorf("certificate not self-signed: %w", err)
	}
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(extensionID) {
			continue
		}
		var sk signedKey
		if rest, err := asn1.Unmarshal(ext.Value, &sk); err != nil || len(rest) != 0 {
			return "", errors.New("bad SignedKey")
		}
		keyType, data, err := decodePublicKey(sk.PubKey)
		if err != nil {
			return "", err
		}
		msg := append([]byte(certPrefix), cert.RawSubjectPublicKeyInfo...)
		switch keyType {
		case 1: // Ed25519
			if len(data) != ed25519.PublicKeySize || !ed25519.Verify(ed25519.PublicKey(data), msg, sk.Signature) {
				return "", errors.New("bad Ed25519 signature")
			}
		case 3: // ECDSA, PKIX DER
			pub, err := x509.ParsePKIXPublicKey(data)
			ec, ok := pub.(*ecdsa.PublicKey)
			if err != nil || !ok {
				return "", errors.New("bad ECDSA key")
			}
			digest := sha256.Sum256(msg)
			if !ecdsa.VerifyASN1(ec, digest[:], sk.Signature) {
				return "", errors.New("bad ECDSA signature")
			}
		default:
			return "", fmt.Errorf("key type %d not supported by this test peer", keyType)
		}
		return peerID(sk.PubKey), nil
	}
	return "", errors.New("no libp2p extension")
}

func tlsConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, // the libp2p checks are remotePeer's
		ClientAuth:         tls.RequireAnyClientCert,
		NextProtos:         []string{"libp2p"},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			chain := make([]*x509.Certificate, len(raw))
			for i, der := range raw {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return err
				}
				chain[i] = c
			}
			_, err := remotePeer(chain)
			return err
		},
	}
}

// -- multistream-select 1.0.0 ------------------------------------------------------------------

const header = "/multistream/1.0.0"

func writeMsg(w io.Writer, msgs ...string) error {
	var out []byte
	for _, m := range msgs {
		out = append(out, protoField(0, []byte(m+"\n"))[1:]...)
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

func selectProtocol(s quic.Stream, proto string) error {
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

func handleStream(s quic.Stream) {
	defer s.Close()
	if got, err := readMsg(s); err != nil || got != header {
		s.CancelRead(0)
		s.CancelWrite(0)
		return
	}
	if err := writeMsg(s, header); err != nil {
		return
	}
	for i := 0; i < 8; i++ {
		proto, err := readMsg(s)
		if err != nil {
			return
		}
		switch proto {
		case "/ipfs/ping/1.0.0":
			writeMsg(s, proto)
			buf := make([]byte, 32)
			for {
				if _, err := io.ReadFull(s, buf); err != nil {
					return
				}
				if _, err := s.Write(buf); err != nil {
					return
				}
			}
		case "/echo/1.0.0":
			writeMsg(s, proto)
			io.Copy(s, s) // to the peer's FIN; Close (deferred) sends ours
			return
		default:
			writeMsg(s, "na")
		}
	}
}

// -- modes ------------------------------------------------------------------------------------

func quicConfig() *quic.Config {
	return &quic.Config{
		Versions:           []quic.VersionNumber{quic.Version1},
		MaxIdleTimeout:     30 * time.Second,
		MaxIncomingStreams: 256,
	}
}

func emit(kind string, v interface{}) {
	b, _ := json.Marshal(v)
	fmt.Printf("%s %s\n", kind, b)
}

func listen(cert tls.Certificate, id string) error {
	ln, err := quic.ListenAddr("127.0.0.1:0", tlsConfig(cert), quicConfig())
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.UDPAddr).Port
	fmt.Printf("LISTEN /ip4/127.0.0.1/udp/%d/quic-v1/p2p/%s\n", port, id)
	for {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			return err
		}
		remote, err := remotePeer(conn.ConnectionState().TLS.PeerCertificates)
		if err != nil {
			conn.CloseWithError(1, err.Error())
			continue
		}
		emit("CONNECTION", map[string]string{"remote_peer": remote, "alpn": conn.ConnectionState().TLS.NegotiatedProtocol})
		go func() {
			for {
				s, err := conn.AcceptStream(context.Background())
				if err != nil {
					return
				}
				go handleStream(s)
			}
		}()
	}
}

func dial(cert tls.Certificate, id, addr string, streams, size int) error {
	parts := strings.Split(addr, "/") // /ip4/<ip>/udp/<port>/quic-v1/p2p/<id>
	if len(parts) != 8 || parts[5] != "quic-v1" {
		return fmt.Errorf("unsupported address %s", addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	conn, err := quic.DialAddrContext(ctx, net.JoinHostPort(parts[2], parts[4]), tlsConfig(cert), quicConfig())
	if err != nil {
		return err
	}
	remote, err := remotePeer(conn.ConnectionState().TLS.PeerCertificates)
	if err != nil {
		return err
	}
	if remote != parts[7] {
		return fmt.Errorf("dialled %s, the certificate is %s's", parts[7], remote)
	}
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	if err := selectProtocol(s, "/ipfs/ping/1.0.0"); err != nil {
		return err
	}
	var rtts []float64
	for i := 0; i < 3; i++ {
		out, in := make([]byte, 32), make([]byte, 32)
		rand.Read(out)
		t := time.Now()
		if _, err := s.Write(out); err != nil {
			return err
		}
		if _, err := io.ReadFull(s, in); err != nil {
			return err
		}
		if string(in) != string(out) {
			return errors.New("ping: wrong bytes back")
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
			errs <- echo(ctx, conn, size)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	emit("RESULT", map[string]interface{}{
		"remote_peer": remote, "local_peer": id, "ping_ms": rtts, "echo_streams": streams, "echo_bytes": size,
		"alpn":    conn.ConnectionState().TLS.NegotiatedProtocol,
		"seconds": time.Since(start).Seconds(),
	})
	return conn.CloseWithError(0, "")
}

func echo(ctx context.Context, conn quic.Connection, size int) error {
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	if err := selectProtocol(s, "/echo/1.0.0"); err != nil {
		return err
	}
	payload := make([]byte, size)
	rand.Read(payload)
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(payload)
		if err == nil {
			err = s.Close() // FIN: the echo ends with ours
		}
		werr <- err
	}()
	got, err := io.ReadAll(s)
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

func main() {
	_, host, err := ed25519.GenerateKey(rand.Reader)
	if err == nil {
		var cert tls.Certificate
		var id string
		cert, id, err = makeCertificate(host)
		if err == nil {
			switch {
			case len(os.Args) == 2 && os.Args[1] == "listen":
				err = listen(cert, id)
			case len(os.Args) == 5 && os.Args[1] == "dial":
				streams, _ := strconv.Atoi(os.Args[3])
				size, _ := strconv.Atoi(os.Args[4])
				err = dial(cert, id, os.Args[2], streams, size)
			default:
				err = errors.New("usage: quicpeer listen | quicpeer dial <multiaddr> <streams> <bytes>")
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR", err)
		os.Exit(1)
	}
}
