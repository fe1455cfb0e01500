package webhooks_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docstream/docstream/internal/webhooks"
)

// The guard refuses loopback, private, link-local, carrier-grade NAT,
// unique-local and unspecified addresses, also written as IPv4-mapped
// IPv6, and lets public ones through.
func TestTheGuardRefusesInternalAddresses(t *testing.T) {
	g := &webhooks.Guard{}
	for _, c := range []struct {
		addr    string
		blocked bool
	}{
		{"127.0.0.1", true},
		{"0.0.0.0", true},
		{"169.254.169.254", true}, // cloud metadata
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"192.168.1.1", true},
		{"100.64.0.1", true}, // carrier-grade NAT
		{"100.127.255.254", true},
		{"::1", true},
		{"::", true},
		{"::ffff:127.0.0.1", true}, // IPv4-mapped loopback
		{"::ffff:169.254.169.254", true},
		{"fc00::1", true}, // unique local
		{"fd12:3456::1", true},
		{"fe80::1", true},
		{"93.184.216.34", false},
		{"100.128.0.1", false}, // just outside 100.64/10
		{"2606:4700:4700::1111", false},
	} {
		err := g.CheckAddr(netip.MustParseAddr(c.addr))
		if got := errors.Is(err, webhooks.ErrBlocked); got != c.blocked {
			t.Errorf("%s: blocked %v, want %v (%v)", c.addr, got, c.blocked, err)
		}
	}
	if err := (&webhooks.Guard{AllowPrivate: true}).CheckAddr(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("--webhooks-allow-private: %v", err)
	}
}

// URLs naming an internal address, or an IP in a decimal, octal or hex
// form some resolvers read as 127.0.0.1, are refused when saved.
func TestEndpointURLsNamingInternalAddressesAreRefused(t *testing.T) {
	g := &webhooks.Guard{Resolver: fixed("127.0.0.1")}
	ctx := context.Background()
	for _, u := range []string{
		"http://127.0.0.1/", "http://[::1]:8080/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/",
		"http://169.254.169.254/latest/meta-data/", "http://100.64.1.1/", "http://[fc00::1]/",
		"http://2130706433/", "http://0x7f000001/", "http://017700000001/", "http://0x7f.1/", "http://127.1/",
		"http://localhost/", "http://resolves-to-loopback.example/",
		"ftp://example.com/", "http://user:pw@example.com/", "/relative",
	} {
		if err := g.CheckURL(ctx, u); err == nil {
			t.Errorf("%s was accepted", u)
		}
	}
	if err := (&webhooks.Guard{Resolver: fixed("93.184.216.34")}).CheckURL(ctx, "https://hooks.example.com/x?token=1"); err != nil {
		t.Errorf("a public URL was refused: %v", err)
	}
}

// A resolver that answers a public address when the endpoint is saved
// and a private one at delivery time (DNS rebinding) does not get the
// delivery through: the check runs on the address connected to.
func TestDNSRebindingIsCaughtOnTheConnectedAddress(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, port, _ := netSplit(srv.Listener.Addr().String())
	r := &rebinding{first: netip.MustParseAddr("93.184.216.34"), then: netip.MustParseAddr("127.0.0.1")}
	g := &webhooks.Guard{Resolver: r}
	u := "http://rebind.example:" + port + "/hook"
	if err := g.CheckURL(context.Background(), u); err != nil {
		t.Fatalf("saving: %v (the first answer is public)", err)
	}
	_, err := g.Client(10*time.Second).Post(u, "application/json", nil)
	if !errors.Is(err, webhooks.ErrBlocked) {
		t.Fatalf("delivery after rebinding: %v, want ErrBlocked", err)
	}
	if hits.Load() != 0 {
		t.Fatal("the private address was reached")
	}
}

// Redirects are not followed and proxies from the environment are not
// used: both would connect where the check did not look.
func TestRedirectsAndEnvironmentProxiesAreNotFollowed(t *testing.T) {
	var target, proxy atomic.Int32
	dst := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { target.Add(1) }))
	t.Cleanup(dst.Close)
	px := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { proxy.Add(1) }))
	t.Cleanup(px.Close)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, dst.URL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(src.Close)
	t.Setenv("HTTP_PROXY", px.URL)
	t.Setenv("http_proxy", px.URL)
	c := (&webhooks.Guard{AllowPrivate: true}).Client(10 * time.Second)
	resp, err := c.Post(src.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || target.Load() != 0 || proxy.Load() != 0 {
		t.Fatalf("status %d, redirect target hit %d, proxy hit %d: want 307, 0, 0", resp.StatusCode, target.Load(), proxy.Load())
	}
}

type fixedResolver []netip.Addr

func fixed(addrs ...string) fixedResolver {
	var out fixedResolver
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func (f fixedResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return f, nil
}

// rebinding answers first once, then then.
type rebinding struct {
	n           atomic.Int32
	first, then netip.Addr
}

func (r *rebinding) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	if r.n.Add(1) == 1 {
		return []netip.Addr{r.first}, nil
	}
	return []netip.Addr{r.then}, nil
}
