package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/metastore/metastore/auth"
	"github.com/metastore/metastore/server"
)

// authFlags are serve's authentication flags, etcd's names (serveFlags
// appends them; serveConfig copies them with applyAuthFlags).
func authFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "auth-token", Value: "simple", Usage: "token type: simple, or jwt,pub-key=<path>,priv-key=<path>,sign-method=<RS256|ES256|EdDSA|HS256...>[,ttl=5m]"},
		&cli.UintFlag{Name: "auth-token-ttl", Value: uint(auth.DefaultTokenTTL.Seconds()), Usage: "simple token lifetime in seconds (renewed by each use)"},
		&cli.IntFlag{Name: "bcrypt-cost", Value: auth.DefaultBcryptCost, Usage: "bcrypt cost of password hashes (4 to 31)"},
	}
}

// applyAuthFlags copies authFlags into cfg, checking them as etcd does.
func applyAuthFlags(c *cli.Context, cfg *server.Config) error {
	cost := c.Int("bcrypt-cost")
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return fmt.Errorf("--bcrypt-cost %d: want %d to %d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	ttl := time.Duration(c.Uint("auth-token-ttl")) * time.Second
	if _, err := auth.NewTokenProvider(c.String("auth-token"), ttl); err != nil {
		return fmt.Errorf("--auth-token: %w", err)
	}
	cfg.Auth = server.AuthConfig{Token: c.String("auth-token"), TokenTTL: ttl, BcryptCost: cost}
	return nil
}
