package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/docstream/docstream/internal/gateway"
	"github.com/docstream/docstream/internal/httpx"
)

func init() {
	register(&target{name: "gateway", bind: func(fs *pflag.FlagSet) startFunc {
		var (
			addr, adminAddr, path, origins, proxies string
			rateLimit                               int
			rateWindow                              time.Duration
			maxBody                                 int64
		)
		fs.StringVar(&addr, "gateway-addr", ":8000", "gateway (reverse proxy) listen address")
		fs.StringVar(&adminAddr, "gateway-admin-addr", ":8001", "gateway read-only admin API listen address (/status, /routes, /upstreams); empty: off")
		fs.StringVar(&path, "gateway-config", "", "gateway YAML file (services, upstreams, routes, policies); empty: built-in routes to this process's own --*-addr ports on 127.0.0.1")
		fs.IntVar(&rateLimit, "gateway-rate-limit", 1000, "requests per client IP per --gateway-rate-window; 0: off (overrides the YAML file when given)")
		fs.DurationVar(&rateWindow, "gateway-rate-window", time.Second, "rate limit window (overrides the YAML file when given)")
		fs.Int64Var(&maxBody, "gateway-max-body", 100<<20, "largest request body in bytes, 413 above; 0: no limit (overrides the YAML file when given)")
		fs.StringVar(&origins, "gateway-cors-origins", "*", "comma-separated CORS origins, * for any (overrides the YAML file when given)")
		fs.StringVar(&proxies, "gateway-trusted-proxies", "", "comma-separated CIDRs of proxies in front of the gateway whose X-Forwarded-For is kept (overrides the YAML file when given)")
		return func(ctx context.Context, sys *system) error {
			var cfg *gateway.Config
			if path == "" {
				cfg = gateway.DefaultFor(localUpstreams(fs))
			} else {
				var err error
				if cfg, err = gateway.Load(path); err != nil {
					return err
				}
			}
			// With no file the flags are the configuration; with a file,
			// only flags given explicitly (or by env) override it.
			set := func(name string) bool { return path == "" || fs.Changed(name) }
			if set("gateway-rate-limit") {
				cfg.RateLimit.Requests = rateLimit
			}
			if set("gateway-rate-window") {
				cfg.RateLimit.Window = rateWindow
			}
			if set("gateway-max-body") {
				cfg.MaxBodyBytes = maxBody
			}
			if set("gateway-cors-origins") {
				cfg.CORS.Origins = splitList(origins)
			}
			if set("gateway-trusted-proxies") {
				cfg.TrustedProxies = splitList(proxies)
			}
			log := sys.log.With("service", "gateway")
			g, err := gateway.New(cfg, log)
			if err != nil {
				if path != "" {
					return fmt.Errorf("gateway config %s: %w", path, err)
				}
				return err
			}
			ln, err := sys.Listen("gateway", addr)
			if err != nil {
				return err
			}
			if adminAddr != "" {
				aln, err := sys.Listen("gateway-admin", adminAddr)
				if err != nil {
					ln.Close()
					return err
				}
				sys.Go("gateway admin", func(ctx context.Context) error { return httpx.Serve(ctx, aln, g.AdminHandler(), log, sys.cfg.HTTP) })
			}
			sys.Go("gateway health checks", g.Run)
			sys.Go("gateway", func(ctx context.Context) error { return httpx.Serve(ctx, ln, g.Handler(), log, sys.cfg.HTTP) })
			return nil
		}
	}})
}

// localUpstreams points each service at the address its target listens on
// in this binary's flags (--document-addr, …), on loopback, so the built-in
// routes follow the ports whether they are the reference's or free ones.
func localUpstreams(fs *pflag.FlagSet) map[string][]string {
	defaults := map[string]int{"document": gateway.DocumentPort, "signature": gateway.SignaturePort,
		"search": gateway.SearchPort, "realtime": gateway.RealtimePort}
	out := map[string][]string{}
	for name, port := range defaults {
		hostport := fmt.Sprintf("127.0.0.1:%d", port)
		if f := fs.Lookup(name + "-addr"); f != nil {
			if host, p, err := net.SplitHostPort(f.Value.String()); err == nil {
				if host == "" || host == "0.0.0.0" || host == "::" {
					host = "127.0.0.1"
				}
				hostport = net.JoinHostPort(host, p)
			}
		}
		out[name] = []string{"http://" + hostport}
	}
	return out
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
