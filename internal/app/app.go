// Package app wires docstream's targets into one process: the module table
// (modules.go) lists every target with its flags, the shared resources it
// needs, its ports, its gateway routes and its dependencies; the System
// opens each shared resource once and closes it after every module has
// stopped. `docstream serve` and `docstream dev` call Run; nothing here
// registers itself.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/docstream/docstream/internal/audit"
	"github.com/docstream/docstream/internal/auth"
	"github.com/docstream/docstream/internal/gateway"
	"github.com/docstream/docstream/internal/ops"
	"github.com/docstream/docstream/internal/postgres"
)

// Run starts the chosen targets (c.Targets) and blocks until ctx is done or
// one fails. onReady, if set, is called once every target is serving.
func Run(ctx context.Context, c *Config, log *slog.Logger, onReady func(sys *System)) error {
	chosen, err := prepare(c)
	if err != nil {
		return err
	}
	if c.Shared.Migrate && c.Shared.directURL() != "" {
		if err := postgres.Migrate(ctx, c.Shared.directURL(), log); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sys := newSystem(ctx, &c.Shared, log)
	sys.authCfg = c.Auth
	defer sys.close()
	for _, m := range chosen {
		if err := sys.bind(m.Name, m.Ports(c)); err != nil {
			return err
		}
	}
	for _, m := range chosen {
		if m.Metrics != nil {
			m.Metrics()
		}
		r := &Resources{sys: sys, module: m, ports: m.Ports(c), log: log.With("service", m.Name)}
		if err := m.Start(sys.ctx, c, r); err != nil {
			// Stop what already started before reporting.
			cancel()
			return errors.Join(fmt.Errorf("start %s: %w", m.Name, err), sys.group.Wait())
		}
		log.Info("target started", "target", m.Name)
	}
	if onReady != nil {
		onReady(sys)
	}
	err = sys.group.Wait()
	log.Info("stopped", "err", err)
	return err
}

// prepare chooses the modules, wires them to each other and refuses, before
// anything starts, a configuration one of them cannot run with.
func prepare(c *Config) ([]*Module, error) {
	chosen, err := Choose(c.Targets)
	if err != nil {
		return nil, err
	}
	if err := c.Shared.Validate(); err != nil {
		return nil, err
	}
	in := func(name string) bool {
		return slices.ContainsFunc(chosen, func(m *Module) bool { return m.Name == name })
	}
	if err := validateAuth(c, chosen, in); err != nil {
		return nil, err
	}
	if err := setAuditKey(c, in); err != nil {
		return nil, err
	}
	if in("webhooks") && c.Webhooks.SecretKey == "" && !c.Shared.Dev {
		// A key generated per data dir would differ between instances (each
		// could not read the secrets the others stored) and be lost with the
		// dir: outside dev the operator sets one.
		return nil, errors.New("the webhooks target encrypts signing secrets with --webhooks-secret-key (WEBHOOKS_SECRET_KEY), the same key in every instance: create one with `openssl rand -hex 32`")
	}
	for _, m := range chosen {
		if m.Wire != nil {
			m.Wire(c, in)
		}
	}
	for _, m := range chosen {
		if err := m.Validate(c); err != nil {
			return nil, err
		}
	}
	return chosen, nil
}

// validateAuth refuses, before anything starts, a required mode that
// could verify no caller, and background work that could not present a
// service credential.
func validateAuth(c *Config, chosen []*Module, in func(string) bool) error {
	c.Auth.Dev = c.Shared.Dev
	if err := c.Auth.Validate(); err != nil {
		return err
	}
	verifies := slices.ContainsFunc(chosen, func(m *Module) bool {
		// The gateway verifies only when told to (--auth-at-gateway) or
		// for its admin API in required mode.
		return slices.Contains(m.Needs, Auth) && (m.Name != "gateway" || gatewayVerifies(c))
	})
	if c.Auth.ModeOf() != auth.ModeRequired || !verifies {
		return nil
	}
	// API keys verify callers only where the process reaches PostgreSQL.
	if !c.Auth.CanVerify() && (apiKeys == nil || c.Shared.DatabaseURL == "") {
		return errors.New("--auth-mode=required but nothing can verify a caller: set --auth-jwt-secret (AUTH_JWT_SECRET) or --auth-jwks-url (AUTH_JWKS_URL) for your identity provider, or run with --auth-mode=open (the behaviour before required became serve's default)")
	}
	if in("signature") && c.Auth.JWTSecret == "" && c.Auth.ServiceSecret == "" {
		return errors.New("--auth-mode=required: the signature service's retries call the document service with a service credential, which needs --auth-service-secret (or --auth-jwt-secret to derive it from), the same in every process")
	}
	return nil
}

// setAuditKey loads --audit-signing-key into the audit package. The
// targets that append audit entries (document, signature) refuse to run
// without one, in every auth mode: their heads would be unsigned, and an
// unsigned head verifies as invalid (nothing proves the newest entries
// were not deleted), so every trail they wrote would be evidence of
// nothing, and would stay invalid after a key is configured. dev
// generates one in its data dir before it gets here.
// --audit-verify-keys (the keys before a rotation) are published beside it.
func setAuditKey(c *Config, in func(string) bool) error {
	old, err := audit.LoadVerifyKeys(c.Shared.AuditVerifyKeys)
	if err != nil {
		return err
	}
	audit.SetVerifyKeys(old)
	if c.Shared.AuditSigningKey == "" {
		audit.SetSigner(nil)
		if in("document") || in("signature") {
			return errors.New("the document and signature targets sign the audit trail with --audit-signing-key (AUDIT_SIGNING_KEY), the same key in every instance: create one with `docstream audit keygen --out audit.pem` (or `openssl genpkey -algorithm ed25519 -out audit.pem`)")
		}
		return nil
	}
	s, err := audit.LoadKey(c.Shared.AuditSigningKey)
	if err != nil {
		return err
	}
	audit.SetSigner(s)
	return nil
}

// Choose expands a --targets value ("all" or comma-separated names) into
// modules in start order.
func Choose(targets string) ([]*Module, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(targets, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
		case n == "all":
			for _, m := range Modules() {
				want[m.Name] = true
			}
		case module(n) != nil:
			want[n] = true
		default:
			return nil, fmt.Errorf("unknown target %q: choose from all, %s", n, joinNames(sortedNames()))
		}
	}
	if len(want) == 0 {
		return nil, errors.New("--targets is empty")
	}
	var out []*Module
	for _, m := range startOrder() {
		if want[m.Name] {
			out = append(out, m)
		}
	}
	return out, nil
}

// startOrder is the table sorted so every module comes after its
// dependencies (a stable topological order: table order among equals).
func startOrder() []*Module {
	mods := Modules()
	var out []*Module
	done := map[string]bool{}
	for len(out) < len(mods) {
		progressed := false
		for _, m := range mods {
			if done[m.Name] || slices.ContainsFunc(m.Deps, func(d string) bool { return !done[d] }) {
				continue
			}
			out = append(out, m)
			done[m.Name] = true
			progressed = true
		}
		if !progressed {
			panic("app: the module table has a dependency cycle or an unknown dependency")
		}
	}
	return out
}

func module(name string) *Module {
	for _, m := range Modules() {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// joinNames lists names for a message or a flag's help.
func joinNames(names []string) string { return strings.Join(names, ", ") }

func sortedNames() []string {
	var names []string
	for _, m := range Modules() {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	return names
}

// BuiltinRoutes are the gateway routes every module declares, each sent to
// its module.
func BuiltinRoutes() []gateway.Route {
	var out []gateway.Route
	for _, m := range Modules() {
		for _, r := range m.Routes {
			r.Service = m.Name
			out = append(out, r)
		}
	}
	return out
}

// localUpstreams points each routed module at its HTTP port in c, on
// loopback, so the built-in routes follow the ports whether they are the
// reference's or others.
func localUpstreams(c *Config) map[string][]string {
	out := map[string][]string{}
	for _, m := range Modules() {
		if len(m.Routes) == 0 {
			continue
		}
		for _, p := range m.Ports(c) {
			if p.HTTP {
				out[m.Name] = []string{"http://" + loopbackDial(p.Addr)}
				break
			}
		}
	}
	return out
}

// opsTargets are every module's first HTTP address, in module-table
// order, for GET /ops (internal/ops): the module table's listen addresses
// dialled on this host, as the gateway's built-in upstreams are. The
// modules this process runs (c.Targets) are Local: their metrics are this
// process's registry.
func opsTargets(c *Config) []ops.Target {
	chosen, _ := Choose(c.Targets) // prepare refused a bad list before the gateway starts
	var out []ops.Target
	for _, m := range Modules() {
		for _, p := range m.Ports(c) {
			// The gateway's own figures are on its admin port (its
			// proxy port has no /metrics); without one it is left out.
			if p.HTTP && (m.Name != "gateway" || p.Name == "gateway-admin") {
				local := slices.ContainsFunc(chosen, func(x *Module) bool { return x.Name == m.Name })
				out = append(out, ops.Target{Name: m.Name, URL: "http://" + loopbackDial(p.Addr), Local: local})
				break
			}
		}
	}
	return out
}

// loopbackDial is the address to dial a listen address of this host: a
// wildcard host (":8005", "0.0.0.0:8005", "[::]:8005") becomes 127.0.0.1.
func loopbackDial(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// CheckGatewayRoutes compares a gateway configuration (a user's YAML) with
// the module table: every path a module serves should be routed to that
// module's service, and every routed path should be one a module serves.
// It returns one line per difference; none means they agree.
func CheckGatewayRoutes(cfg *gateway.Config) []string {
	served := map[string]string{} // path → module
	for _, r := range BuiltinRoutes() {
		for _, p := range r.Paths {
			served[p] = r.Service
		}
	}
	routed := map[string]string{} // path → service
	for _, r := range cfg.Routes {
		for _, p := range r.Paths {
			routed[p] = r.Service
		}
	}
	var problems []string
	for _, p := range sortedKeys(served) {
		switch svc, ok := routed[p]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s (served by %s) is not routed", p, served[p]))
		case svc != served[p]:
			problems = append(problems, fmt.Sprintf("%s is routed to service %q, but module %s serves it", p, svc, served[p]))
		}
	}
	for _, p := range sortedKeys(routed) {
		if _, ok := served[p]; !ok {
			problems = append(problems, fmt.Sprintf("%s (routed to %s) is served by no module", p, routed[p]))
		}
	}
	return problems
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
