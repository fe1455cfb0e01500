package gateway

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/httpx"
)

// Flags are the gateway target's settings from the command line. Without a
// YAML file they are the configuration (with Builtin's routes); with one,
// only the flags given explicitly (or by environment) override it.
type Flags struct {
	Addr string // proxy listen address
	// AdminAddr is the read-only admin API's listen address (empty: off).
	// Loopback by default: it shows every upstream's address and errors,
	// so exposing it is a deliberate choice (--gateway-admin-addr :8001).
	AdminAddr string
	File      string // YAML configuration; empty: Builtin
	// RateLimit is requests per client IP per RateWindow; 0: off.
	RateLimit  int
	RateWindow time.Duration
	// MaxBody is the largest request body in bytes; 0: no limit.
	MaxBody        int64
	CORSOrigins    string // comma-separated, * for any
	TrustedProxies string // comma-separated CIDRs
}

// DefaultFlags is the gateway's configuration when nothing is set: the one
// place its defaults are written (the flags show them).
func DefaultFlags() Flags {
	return Flags{
		Addr:        ":8000",
		AdminAddr:   "127.0.0.1:8001",
		RateLimit:   1000,
		RateWindow:  time.Second,
		MaxBody:     httpx.DefaultMaxUpload,
		CORSOrigins: "*",
	}
}

// Flag names that override a YAML file when given.
const (
	flagRateLimit      = "gateway-rate-limit"
	flagRateWindow     = "gateway-rate-window"
	flagMaxBody        = "gateway-max-body"
	flagCORSOrigins    = "gateway-cors-origins"
	flagTrustedProxies = "gateway-trusted-proxies"
)

// RegisterFlags registers the gateway target's flags, defaulting to f's
// values.
func (f *Flags) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Addr, "gateway-addr", f.Addr, "gateway (reverse proxy) listen address")
	fs.StringVar(&f.AdminAddr, "gateway-admin-addr", f.AdminAddr, "gateway read-only admin API listen address (/status, /routes, /upstreams; admins only in required mode); loopback by default, empty: off")
	fs.StringVar(&f.File, "gateway-config", f.File, "gateway YAML file (services, upstreams, routes, policies); empty: built-in routes to this process's own --*-addr ports on 127.0.0.1")
	fs.IntVar(&f.RateLimit, flagRateLimit, f.RateLimit, "requests per client IP per --gateway-rate-window; 0: off (overrides the YAML file when given)")
	fs.DurationVar(&f.RateWindow, flagRateWindow, f.RateWindow, "rate limit window (must be > 0; overrides the YAML file when given)")
	fs.Int64Var(&f.MaxBody, flagMaxBody, f.MaxBody, "largest request body in bytes, 413 above; 0: no limit (overrides the YAML file when given)")
	fs.StringVar(&f.CORSOrigins, flagCORSOrigins, f.CORSOrigins, "comma-separated CORS origins, * for any; Access-Control-Allow-Credentials goes to named origins only, never with * (overrides the YAML file when given)")
	fs.StringVar(&f.TrustedProxies, flagTrustedProxies, f.TrustedProxies, "comma-separated CIDRs of proxies in front of the gateway whose X-Forwarded-For is kept (overrides the YAML file when given)")
}

// Validate refuses flag values the gateway cannot run with, naming the
// flag. Zero rate limit (off) and zero body limit (none) are meaningful.
func (f *Flags) Validate() error {
	switch {
	case f.RateLimit < 0:
		return fmt.Errorf("gateway: --%s must be >= 0 (0: off), got %d", flagRateLimit, f.RateLimit)
	case f.RateWindow <= 0:
		return fmt.Errorf("gateway: --%s must be > 0, got %v", flagRateWindow, f.RateWindow)
	case f.MaxBody < 0:
		return fmt.Errorf("gateway: --%s must be >= 0 (0: no limit), got %d", flagMaxBody, f.MaxBody)
	}
	return nil
}

// Resolve is the configuration the gateway runs with: the YAML file if
// one is given, else builtin; then the flags, all of them without a file,
// with one only those for which changed reports true.
func (f *Flags) Resolve(builtin *Config, changed func(flag string) bool) (*Config, error) {
	cfg := builtin
	if f.File != "" {
		var err error
		if cfg, err = Load(f.File); err != nil {
			return nil, err
		}
	}
	set := func(name string) bool { return f.File == "" || changed(name) }
	if set(flagRateLimit) {
		cfg.RateLimit.Requests = f.RateLimit
	}
	if set(flagRateWindow) {
		cfg.RateLimit.Window = f.RateWindow
	}
	if set(flagMaxBody) {
		cfg.MaxBodyBytes = f.MaxBody
	}
	if set(flagCORSOrigins) {
		cfg.CORS.Origins = splitList(f.CORSOrigins)
	}
	if set(flagTrustedProxies) {
		cfg.TrustedProxies = splitList(f.TrustedProxies)
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
