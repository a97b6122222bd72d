#!/usr/bin/env bash
# Puts the live page's player (hls.js, pinned in web/package.json and package-lock.json) in
# web/static/vendor/. Without npm it says so and leaves the player out: amphi still builds
# and its live page says the player is unavailable.
set -euo pipefail
cd "$(dirname "$0")/../web"
target=static/vendor/hls.min.js
if [ -f "$target" ] && [ "$target" -nt package-lock.json ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: the live page's player (hls.js) is not installed" >&2
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
mkdir -p static/vendor
cp node_modules/hls.js/dist/hls.min.js "$target"
cp node_modules/hls.js/LICENSE static/vendor/hls.js.LICENSE
echo "hls.js $(node -p 'require("./node_modules/hls.js/package.json").version') installed in web/$target"
