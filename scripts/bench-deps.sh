#!/bin/sh
# What the load tools in benches/ compare amphi with, from Debian: nginx (light build) and wrk,
# plus curl. Run as root. nginx is started by the tools themselves with their own
# configuration; the package's own service, if this script installed it, is stopped again.
set -eu
had_nginx=$(command -v nginx || true)
if [ "$(id -u)" != 0 ]; then
    echo "bench-deps: run as root (apt-get install -y nginx-light wrk curl)" >&2
    exit 1
fi
apt-get install -y --no-install-recommends nginx-light wrk curl
if [ -z "$had_nginx" ]; then
    (service nginx stop || true) >/dev/null 2>&1
fi
echo "bench-deps: nginx $(nginx -v 2>&1 | sed 's/.*\///'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
