package main

// Keys and peer ids (peer-ids spec): the PublicKey protobuf, identity or sha256
// multihash, base58btc; signature checks for the key types Go's standard library has.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
)

func protoField(tag byte, data []byte) []byte {
	return append(append([]byte{tag}, uvarint(uint64(len(data)))...), data...)
}

func uvarint(n uint64) []byte {
	var out []byte
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	return append(out, byte(n))
}

// readUvarint reads a varint of at most 9 bytes from b; the value and its length.
func readUvarint(b []byte) (uint64, int, error) {
	var n uint64
	for i := 0; i < len(b) && i < 9; i++ {
		n |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return n, i + 1, nil
		}
	}
	return 0, 0, errors.New("bad varint")
}

// protoFields splits a protobuf message into its length-delimited fields (other wire
// types are skipped when they are varints, and refused otherwise).
func protoFields(b []byte) (map[int][][]byte, error) {
	out := map[int][][]byte{}
	for len(b) > 0 {
		key, n, err := readUvarint(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
		switch key & 7 {
		case 0:
			v, m, err := readUvarint(b)
			if err != nil {
				return nil, err
			}
			out[int(key>>3)] = append(out[int(key>>3)], uvarint(v))
			b = b[m:]
		case 2:
			size, m, err := readUvarint(b)
			if err != nil || uint64(len(b)-m) < size {
				return nil, errors.New("bad length-delimited field")
			}
			out[int(key>>3)] = append(out[int(key>>3)], b[m:m+int(size)])
			b = b[m+int(size):]
		default:
			return nil, fmt.Errorf("wire type %d not expected", key&7)
		}
	}
	return out, nil
}

// encodePublicKey is the PublicKey protobuf: field 1 KeyType, field 2 Data.
func encodePublicKey(keyType byte, data []byte) []byte {
	return append([]byte{0x08, keyType}, protoField(0x12, data)...)
}

func decodePublicKey(b []byte) (byte, []byte, error) {
	fields, err := protoFields(b)
	if err != nil || len(fields[1]) != 1 || len(fields[2]) != 1 || len(fields[1][0]) != 1 {
		return 0, nil, errors.New("bad PublicKey protobuf")
	}
	return fields[1][0][0], fields[2][0], nil
}

// verify checks sig over msg with the key of a PublicKey protobuf.
func verify(encodedKey, msg, sig []byte) error {
	keyType, data, err := decodePublicKey(encodedKey)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(msg)
	switch keyType {
	case 0: // RSA, PKIX DER
		pub, err := x509.ParsePKIXPublicKey(data)
		key, ok := pub.(*rsa.PublicKey)
		if err != nil || !ok {
			return errors.New("bad RSA key")
		}
		return rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig)
	case 1: // Ed25519
		if len(data) != ed25519.PublicKeySize || !ed25519.Verify(ed25519.PublicKey(data), msg, sig) {
			return errors.New("bad Ed25519 signature")
		}
		return nil
	case 3: // ECDSA, PKIX DER
		pub, err := x509.ParsePKIXPublicKey(data)
		key, ok := pub.(*ecdsa.PublicKey)
		if err != nil || !ok || !ecdsa.VerifyASN1(key, digest[:], sig) {
			return errors.New("bad ECDSA signature")
		}
		return nil
	}
	return fmt.Errorf("key type %d not supported by this test peer", keyType)
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

// identity is this process's Ed25519 host key.
type identity struct {
	key     ed25519.PrivateKey
	encoded []byte // its PublicKey protobuf
	id      string
}

func newIdentity() (*identity, error) {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	encoded := encodePublicKey(1, pub)
	return &identity{key: key, encoded: encoded, id: peerID(encoded)}, nil
}
