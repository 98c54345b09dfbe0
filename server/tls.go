package server

import (
	"crypto/tls"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// DialCredentials are the transport credentials for dialling a member's
// client URL (lease and promotion forwarding to the leader, corruption
// checks): TLS with Config.ClientTLS when the URL is https, plaintext when
// it is http.
func (s *Server) DialCredentials(clientURL string) credentials.TransportCredentials {
	if !strings.HasPrefix(clientURL, "https://") {
		return insecure.NewCredentials()
	}
	cfg := s.cfg.ClientTLS
	if cfg == nil { // an https member without client TLS flags here: system roots
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return credentials.NewTLS(cfg)
}
