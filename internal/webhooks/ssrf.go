package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Resolver is what the guard asks for a host's addresses (net.Resolver;
// tests give one that changes its answer, as a DNS rebinding attack does).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard keeps deliveries away from the deployment's own network (SSRF).
// The check that counts runs on the address actually connected to
// (net.Dialer.Control), after resolution, so a name that resolved to a
// public address when the endpoint was saved and to a private one at
// delivery time (DNS rebinding) is still refused. Redirects are not
// followed and proxies from the environment are not used: either would
// connect somewhere the check did not see.
type Guard struct {
	// AllowPrivate lets loopback, private and link-local addresses through
	// (--webhooks-allow-private; `docstream dev`, where receivers are local).
	AllowPrivate bool
	Resolver     Resolver
}

// blocked are the ranges a delivery may not reach unless AllowPrivate.
// IPv4-mapped IPv6 addresses are unmapped before the check.
var blocked = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",      // "this network"; 0.0.0.0 connects to the local host
		"10.0.0.0/8",     // private
		"100.64.0.0/10",  // carrier-grade NAT (often cloud-internal)
		"127.0.0.0/8",    // loopback
		"169.254.0.0/16", // link-local, cloud metadata (169.254.169.254)
		"172.16.0.0/12",  // private
		"192.0.0.0/24",   // IETF protocol assignments
		"192.168.0.0/16", // private
		"198.18.0.0/15",  // benchmarking
		"224.0.0.0/4",    // multicast
		"240.0.0.0/4",    // reserved, broadcast
		"::/128",         // unspecified
		"::1/128",        // loopback
		"64:ff9b::/96",   // NAT64: embeds an IPv4 address
		"64:ff9b:1::/48", // local NAT64
		"2002::/16",      // 6to4: embeds an IPv4 address
		"fc00::/7",       // unique local
		"fe80::/10",      // link-local
		"fec0::/10",      // site-local (deprecated)
		"ff00::/8",       // multicast
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// ErrBlocked is returned for a destination the guard refuses.
var ErrBlocked = errors.New("destination address is loopback, private, link-local or reserved (see --webhooks-allow-private)")

// CheckAddr refuses a blocked address.
func (g *Guard) CheckAddr(a netip.Addr) error {
	if g.AllowPrivate {
		return nil
	}
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return ErrBlocked
	}
	for _, p := range blocked {
		if p.Contains(a) {
			return fmt.Errorf("%s: %w", a, ErrBlocked)
		}
	}
	return nil
}

// control is the dialer's check of the address it is about to connect to.
func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhooks: unexpected address %q: %w", address, ErrBlocked)
	}
	return g.CheckAddr(ap.Addr())
}

// CheckURL validates an endpoint URL: http or https, a host, no user
// information, no IP literal in a form other than the canonical one
// (2130706433, 0x7f.1 or 017700000001 mean 127.0.0.1 to some resolvers),
// and, unless AllowPrivate, a host that does not resolve to a blocked
// address now. The delivery checks again; this only tells the user early.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return errors.New("must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return errors.New("must not carry user information (put credentials in the path or a query parameter)")
	}
	if u.Fragment != "" {
		return errors.New("must not have a fragment")
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return g.CheckAddr(a)
	}
	if looksNumeric(host) {
		return errors.New("an IP address must be written in dotted decimal (IPv4) or bracketed (IPv6) form")
	}
	if g.AllowPrivate {
		return nil
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return fmt.Errorf("localhost: %w", ErrBlocked)
	}
	addrs, err := g.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		// An unresolvable name may resolve later; the delivery decides.
		return nil
	}
	for _, a := range addrs {
		if err := g.CheckAddr(a); err != nil {
			return err
		}
	}
	return nil
}

// looksNumeric reports a host made only of digits, dots and hex markers:
// an IP address in a non-canonical form, never a real name (a top-level
// domain is never all-numeric).
func looksNumeric(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	l := strings.ToLower(last)
	if strings.HasPrefix(l, "0x") {
		l = l[2:]
		return l == "" || strings.Trim(l, "0123456789abcdef") == ""
	}
	return strings.Trim(l, "0123456789") == ""
}

func (g *Guard) resolver() Resolver {
	if g.Resolver != nil {
		return g.Resolver
	}
	return net.DefaultResolver
}

// Client is the HTTP client of deliveries: every connection checked by the
// guard, no proxy, no redirect followed, timeout per request.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout, Control: g.control}
	tr := &http.Transport{
		Proxy: nil, // never HTTP(S)_PROXY: the proxy would connect, unchecked
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if looksNumeric(host) && !isIP(host) {
				return nil, fmt.Errorf("webhooks: host %q: %w", host, ErrBlocked)
			}
			ips, err := g.resolver().LookupNetIP(ctx, "ip", host)
			if err != nil {
				return nil, err
			}
			var firstErr error
			for _, ip := range ips {
				c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
				if err == nil {
					return c, nil
				}
				if firstErr == nil {
					firstErr = err
				}
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("webhooks: %s resolves to no address", host)
			}
			return nil, firstErr
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			// A 3xx is the endpoint's answer (a failure), not an
			// instruction: following it would reach an unchecked URL.
			return http.ErrUseLastResponse
		},
	}
}

func isIP(h string) bool { _, err := netip.ParseAddr(h); return err == nil }
