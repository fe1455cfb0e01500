package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestApplyEnvPrecedence(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://env", "CACHE_TTL": "7s", "PORT": "9"}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	db := fs.String("database-url", "postgres://default", "")
	ttl := fs.Duration("cache-ttl", 0, "")
	port := fs.Int("port", 1, "")
	if err := fs.Parse([]string{"--port=5"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyEnv(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *db != "postgres://env" {
		t.Errorf("env should fill an unset flag: got %q", *db)
	}
	if ttl.String() != "7s" {
		t.Errorf("durations parse from env: got %v", *ttl)
	}
	if *port != 5 {
		t.Errorf("a flag given on the command line wins over env: got %d", *port)
	}
}

func TestApplyEnvBadValueNamesVariable(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.Int("pool-size", 1, "")
	err := ApplyEnv(fs, func(k string) string { return map[string]string{"POOL_SIZE": "many"}[k] })
	if err == nil || !strings.Contains(err.Error(), "POOL_SIZE") || !strings.Contains(err.Error(), "--pool-size") {
		t.Fatalf("want an error naming POOL_SIZE and --pool-size, got %v", err)
	}
}

func TestNoEnvFlagsIgnoreTheEnvironment(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	title := fs.String("title", "", "")
	NoEnv(fs)
	server := fs.String("server-url", "", "")
	getenv := func(k string) string { return map[string]string{"TITLE": "from env", "SERVER_URL": "http://x"}[k] }
	if err := ApplyEnv(fs, getenv); err != nil {
		t.Fatal(err)
	}
	if *title != "" || *server != "http://x" {
		t.Fatalf("title=%q server-url=%q", *title, *server)
	}
}
