#!/usr/bin/env bash
# Refreshes the web application's vendored JavaScript from the npm registry
# (only needed to change a version; nothing here runs at build time):
#   pdf.js  -> internal/webapp/static/vendor/pdfjs/ (PDF previews, page 1)
#   axe-core -> internal/app/testdata/axe.min.js     (accessibility check in the browser tests)
# Usage: scripts/vendor-web.sh [pdfjs-version] [axe-version]
set -euo pipefail
cd "$(dirname "$0")/.."
PDFJS=${1:-6.5.438}
AXE=${2:-4.14.1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "pdfjs-dist@$PDFJS" "axe-core@$AXE" >/dev/null)
mkdir -p "$tmp/p" "$tmp/a"
tar xzf "$tmp/pdfjs-dist-$PDFJS.tgz" -C "$tmp/p"
tar xzf "$tmp/axe-core-$AXE.tgz" -C "$tmp/a"
dst=internal/webapp/static/vendor/pdfjs
cp "$tmp/p/package/build/pdf.min.mjs" "$tmp/p/package/build/pdf.worker.min.mjs" "$tmp/p/package/LICENSE" "$dst/"
echo "pdfjs-dist $PDFJS (npm), build/pdf.min.mjs and build/pdf.worker.min.mjs; refresh with scripts/vendor-web.sh" > "$dst/VERSION"
cp "$tmp/a/package/axe.min.js" internal/app/testdata/axe.min.js
cp "$tmp/a/package/LICENSE" internal/app/testdata/axe.LICENSE
echo "axe-core $AXE (npm), axe.min.js; refresh with scripts/vendor-web.sh" > internal/app/testdata/axe.VERSION
echo "vendored pdfjs-dist $PDFJS and axe-core $AXE"
