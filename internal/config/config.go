// Package config gives every flag an environment-variable fallback, one rule
// for the whole binary: flag --database-url falls back to DATABASE_URL.
// Precedence: command-line flag, then environment, then the flag's default.
package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// EnvName is the environment variable that backs the flag name.
func EnvName(flag string) string {
	return strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// noEnv is the pflag annotation that exempts a flag from the environment
// fallback.
const noEnv = "docstream/no-env"

// NoEnv exempts every flag of fs from the environment fallback. It is for
// the user commands' per-invocation flags (--title, --name, --file, …),
// whose environment names (TITLE, NAME, FILE, USER) are too generic to be
// read by accident.
func NoEnv(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		_ = fs.SetAnnotation(f.Name, noEnv, []string{"true"})
	})
}

func skipEnv(f *pflag.Flag) bool {
	return f.Name == "help" || f.Annotations[noEnv] != nil
}

// ApplyEnv sets every flag in fs that was not given on the command line from
// its environment variable, when that is set. A value that does not parse is
// an error naming both the variable and the flag.
func ApplyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || skipEnv(f) {
			return
		}
		v := getenv(EnvName(f.Name))
		if v == "" {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("environment %s (for --%s): %w", EnvName(f.Name), f.Name, e)
		}
	})
	return err
}

// AnnotateUsage appends "(env NAME)" to every flag's help text so --help
// shows both spellings.
func AnnotateUsage(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		if skipEnv(f) || strings.Contains(f.Usage, "(env ") {
			return
		}
		f.Usage = fmt.Sprintf("%s (env %s)", f.Usage, EnvName(f.Name))
	})
}

// MarkdownTable renders fs as the README's configuration table.
func MarkdownTable(fs *pflag.FlagSet) string {
	type row struct{ flag, env, def, usage string }
	var rows []row
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		usage, _, _ := strings.Cut(f.Usage, " (env ")
		rows = append(rows, row{"--" + f.Name, EnvName(f.Name), f.DefValue, usage})
	})
	sort.Slice(rows, func(i, j int) bool { return rows[i].flag < rows[j].flag })
	var b strings.Builder
	b.WriteString("| flag | env | default | meaning |\n|---|---|---|---|\n")
	for _, r := range rows {
		def := r.def
		if def == "" || def == "[]" {
			def = "—"
		} else {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", r.flag, r.env, def, strings.ReplaceAll(r.usage, "|", "\\|"))
	}
	return b.String()
}
