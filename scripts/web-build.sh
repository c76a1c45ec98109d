#!/usr/bin/env bash
# Build the web dashboard: web/src → web/dist (index.html, app.js, app.css), bundled and
# minified by esbuild from the packages pinned in web/package-lock.json.
#
#   scripts/web-build.sh            # writes web/dist (commit it: `cargo build` embeds it and
#                                   # needs no Node)
#   scripts/web-build.sh OUT_DIR    # writes OUT_DIR instead (scripts/browser-test.sh builds
#                                   # into a temp dir and fails when it differs from web/dist)
#
# The output is deterministic: the same sources and lock file give the same bytes.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
web="$root/web"
out="${1:-$web/dist}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

command -v npm >/dev/null 2>&1 || {
    echo "web-build: npm is missing (Node.js ≥ 18 and npm are needed to build the dashboard)" >&2
    exit 1
}

cd "$web"
# --ignore-scripts: esbuild's postinstall only optimizes; its JS shim finds the platform binary
# (the @esbuild/<platform> optional package) without it.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null

esbuild="$web/node_modules/.bin/esbuild"
uplot_version=$(node -p 'require("./node_modules/uplot/package.json").version')
# uPlot's licence, kept in the bundle (its own header is not a "legal comment" to esbuild).
footer="/*! uPlot $uplot_version | $(tr -d '\r' <node_modules/uplot/LICENSE | sed 's#\*/#* /#g') */"

mkdir -p "$out"
rm -f "$out/index.html" "$out/app.js" "$out/app.css"
# app.js imports the CSS (uPlot's and ours): esbuild writes it next to app.js as app.css.
"$esbuild" src/app.js \
    --bundle \
    --minify \
    --format=esm \
    --target=es2020,chrome100,firefox100,safari15 \
    --charset=utf8 \
    --legal-comments=eof \
    --footer:js="$footer" \
    --outfile="$out/app.js" \
    --log-level=warning
cp src/index.html "$out/index.html"
for f in index.html app.js app.css; do
    [ -s "$out/$f" ] || {
        echo "web-build: $out/$f was not written" >&2
        exit 1
    }
done
echo "web-build: wrote $(cd "$out" && ls | tr '\n' ' ')into $out"
