// gopeer: a libp2p peer in Go for tests/interop/test_go.py, on the libraries go-libp2p
// itself is built on: quic-go for /quic-v1, flynn/noise and hashicorp/yamux for
// TCP + Noise + yamux.  go-libp2p is not packaged in Debian and no Go module proxy is
// reachable here, so what go-libp2p adds on top of them is written from the specs:
// the libp2p TLS certificate, the Noise handshake payload, peer ids,
// multistream-select, /ipfs/ping/1.0.0 and /echo/1.0.0.  Built offline from Debian's
// packages in GOPATH mode (benchmarks/_go.py).
//
//	gopeer listen quic|tcp                print LISTEN <multiaddr>, serve ping and echo,
//	                                      print CONNECTION <json> per connection
//	gopeer dial <multiaddr> <streams> <bytes>
//	                                      ping 3 times, echo <bytes> on <streams>
//	                                      concurrent streams (half-close), print RESULT
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

var emitLock sync.Mutex

func emit(kind string, v interface{}) {
	b, _ := json.Marshal(v)
	emitLock.Lock()
	fmt.Printf("%s %s\n", kind, b)
	emitLock.Unlock()
}

func run(args []string) error {
	me, err := newIdentity()
	if err != nil {
		return err
	}
	switch {
	case len(args) == 2 && args[0] == "listen" && args[1] == "quic":
		return listenQUIC(me)
	case len(args) == 2 && args[0] == "listen" && args[1] == "tcp":
		return listenTCP(me)
	case len(args) == 4 && args[0] == "dial":
		streams, err1 := strconv.Atoi(args[2])
		size, err2 := strconv.Atoi(args[3])
		if err1 != nil || err2 != nil {
			return errors.New("streams and bytes are numbers")
		}
		// /ip4/<ip>/udp/<port>/quic-v1/p2p/<id> or /ip4/<ip>/tcp/<port>/p2p/<id>
		p := strings.Split(args[1], "/")
		switch {
		case len(p) == 8 && p[3] == "udp" && p[5] == "quic-v1" && p[6] == "p2p":
			return dialQUIC(me, p[2], p[4], p[7], streams, size)
		case len(p) == 7 && p[3] == "tcp" && p[5] == "p2p":
			return dialTCP(me, p[2], p[4], p[6], streams, size)
		}
		return fmt.Errorf("unsupported address %s", args[1])
	}
	return errors.New("usage: gopeer listen quic|tcp | gopeer dial <multiaddr> <streams> <bytes>")
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ERROR", err)
		os.Exit(1)
	}
}
