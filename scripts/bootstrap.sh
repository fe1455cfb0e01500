#!/usr/bin/env bash
# Installs what docstream's local stack and tests need, when it is missing:
# PostgreSQL 15 server binaries, redis-server, pgbouncer, nats-server,
# poppler-utils, tesseract-ocr with English and chromium (Debian packages) and versitygw (an S3 server, built from the Go module proxy into
# .tools/bin). Idempotent: it does nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have_pg() { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
have_pg || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v pg_recvlogical >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_recvlogical >/dev/null 2>&1 || need+=(postgresql-client)
# The extractor's tools (each is optional at run time: a missing one
# disables its formats, see internal/extract): PDF text and rasterising,
# OCR with English.
command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr)
[ -n "$(ls /usr/share/tesseract-ocr/*/tessdata/eng.traineddata 2>/dev/null)" ] || need+=(tesseract-ocr-eng)
# The web application's browser tests (internal/app/browser_test.go) drive
# a headless Chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The independent verifier of audit trails the tests run
# (scripts/verify_audit.py): Python 3 with Ed25519 from python3-cryptography.
python3 -c 'import cryptography.hazmat.primitives.asymmetric.ed25519' >/dev/null 2>&1 || need+=(python3-cryptography)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "bootstrap: missing ${need[*]}; install them with:" >&2
    echo "  sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi

# Debian's postgresql package starts a cluster we do not use; that is harmless.
if [ ! -x .tools/bin/versitygw ]; then
  echo "bootstrap: building versitygw into .tools/bin (S3 tests)"
  GOBIN="$PWD/.tools/bin" go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
if [ ! -x .tools/bin/mailpit ]; then
  echo "bootstrap: building mailpit into .tools/bin (the SMTP sink of the signing tests)"
  GOBIN="$PWD/.tools/bin" go install github.com/axllent/mailpit@v1.33.1
fi
