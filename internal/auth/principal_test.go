package auth

import (
	"context"
	"slices"
	"testing"
)

func TestLevelAllows(t *testing.T) {
	for _, tc := range []struct {
		have, need Level
		want       bool
	}{
		{LevelView, LevelView, true},
		{LevelView, LevelEdit, false},
		{LevelEdit, LevelView, true},
		{LevelEdit, LevelSign, false},
		{LevelSign, LevelEdit, false},
		{LevelSign, LevelSign, true},
		{LevelOwn, LevelSign, true},
		{LevelOwn, LevelEdit, true},
		{LevelEdit, LevelOwn, false},
		{"", LevelView, false},
	} {
		if got := tc.have.Allows(tc.need); got != tc.want {
			t.Errorf("%q.Allows(%q) = %v, want %v", tc.have, tc.need, got, tc.want)
		}
	}
}

func TestReaderKeys(t *testing.T) {
	p := Principal{Kind: KindUser, Subject: "alice", Email: "Alice@Example.com", Groups: []string{"legal", ""}}
	if got, want := p.ReaderKeys(), []string{"user:alice", "group:legal"}; !slices.Equal(got, want) {
		t.Fatalf("unverified email: %v, want %v", got, want)
	}
	p.EmailVerified = true
	if got, want := p.ReaderKeys(), []string{"user:alice", "group:legal", "email:alice@example.com"}; !slices.Equal(got, want) {
		t.Fatalf("verified email: %v, want %v", got, want)
	}
	if keys := Anonymous.ReaderKeys(); len(keys) != 0 {
		t.Fatalf("anonymous has reader keys %v", keys)
	}
}

func TestFromContextDefaultsToAnonymous(t *testing.T) {
	if p := FromContext(context.Background()); !p.IsAnonymous() {
		t.Fatalf("bare context: %+v", p)
	}
	p := Principal{Kind: KindUser, Subject: "bob"}
	if got := FromContext(WithPrincipal(context.Background(), p)); got.Key() != "user:bob" {
		t.Fatalf("got %+v", got)
	}
}

func TestScopes(t *testing.T) {
	people := Principal{Kind: KindUser, Subject: "a"}
	if !people.HasScope(ScopeAdmin) {
		t.Fatal("a person's scopes are not capped")
	}
	key := Principal{Kind: KindAPIKey, Subject: "k1", Scopes: []Scope{ScopeRead}}
	if !key.HasScope(ScopeRead) || key.HasScope(ScopeWrite) {
		t.Fatalf("read-only key: %+v", key)
	}
}

func TestParse(t *testing.T) {
	if m, err := ParseMode(" Required "); err != nil || m != ModeRequired {
		t.Fatalf("ParseMode: %v %v", m, err)
	}
	if _, err := ParseMode("closed"); err == nil {
		t.Fatal("ParseMode accepted closed")
	}
	if _, err := ParseLevel("admin"); err == nil {
		t.Fatal("ParseLevel accepted admin")
	}
}
