#!/usr/bin/env bash
# Regenerates the configuration table in README.md from the binary's flags.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/docstream ./cmd/docstream
table=$(bin/docstream config-table)
python3 - "$table" <<'PY'
import re, sys
table = sys.argv[1]
s = open("README.md").read()
s = re.sub(r"(<!-- config-table:start[^>]*-->\n).*?(<!-- config-table:end -->)", lambda m: m.group(1) + table + m.group(2), s, flags=re.S)
open("README.md", "w").write(s)
PY
