package main

// QUIC on quic-go with the libp2p TLS certificate (tls/tls.md): ALPN "libp2p", a
// self-signed P-256 certificate carrying the host key's signature, checked both ways.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	quic "github.com/lucas-clemente/quic-go"
)

var extensionID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 1}

const certPrefix = "libp2p-tls-handshake:"

type signedKey struct {
	PubKey    []byte
	Signature []byte
}

func makeCertificate(me *identity) (tls.Certificate, error) {
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&certKey.PublicKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	value, err := asn1.Marshal(signedKey{
		PubKey:    me.encoded,
		Signature: ed25519.Sign(me.key, append([]byte(certPrefix), spki...)),
	})
	if err != nil {
		return tls.Certificate{}, err
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
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: certKey}, nil
}

// remotePeer checks the peer's certificate as the tls spec asks; its peer id.
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
		msg := append([]byte(certPrefix), cert.RawSubjectPublicKeyInfo...)
		if err := verify(sk.PubKey, msg, sk.Signature); err != nil {
			return "", err
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

func quicConfig() *quic.Config {
	return &quic.Config{
		Versions:           []quic.VersionNumber{quic.Version1},
		MaxIdleTimeout:     30 * time.Second,
		MaxIncomingStreams: 256,
	}
}

func listenQUIC(me *identity) error {
	cert, err := makeCertificate(me)
	if err != nil {
		return err
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", tlsConfig(cert), quicConfig())
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.UDPAddr).Port
	fmt.Printf("LISTEN /ip4/127.0.0.1/udp/%d/quic-v1/p2p/%s\n", port, me.id)
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

func dialQUIC(me *identity, host, port, want string, streams, size int) error {
	cert, err := makeCertificate(me)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	conn, err := quic.DialAddrContext(ctx, net.JoinHostPort(host, port), tlsConfig(cert), quicConfig())
	if err != nil {
		return err
	}
	remote, err := remotePeer(conn.ConnectionState().TLS.PeerCertificates)
	if err != nil {
		return err
	}
	if remote != want {
		return fmt.Errorf("dialled %s, the certificate is %s's", want, remote)
	}
	open := func() (stream, error) { return conn.OpenStreamSync(ctx) }
	rtts, err := exercise(open, streams, size, true)
	if err != nil {
		return err
	}
	emit("RESULT", map[string]interface{}{
		"remote_peer": remote, "local_peer": me.id, "ping_ms": rtts, "echo_streams": streams,
		"echo_bytes": size, "alpn": conn.ConnectionState().TLS.NegotiatedProtocol,
		"seconds": time.Since(start).Seconds(),
	})
	return conn.CloseWithError(0, "")
}
