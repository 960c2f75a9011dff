#!/usr/bin/env bash
# Installs the system tools the test suite runs the generated artifacts in.
# Idempotent: does nothing when every tool is already present.
set -euo pipefail

packages=(nginx shellcheck cloud-init wrk openssl curl wireguard-tools)
commands=(nginx shellcheck cloud-init wrk openssl curl wg)

missing=()
for i in "${!commands[@]}"; do
  command -v "${commands[$i]}" >/dev/null 2>&1 || [ -x "/usr/sbin/${commands[$i]}" ] || missing+=("${packages[$i]}")
done
# The edge nginx.conf loads the headers-more module (components/edge/nginx_conf.py).
[ -f /usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so ] \
  || missing+=(libnginx-mod-http-headers-more-filter)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
else
  sudo_cmd=()
fi
echo "installing system tools: ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts nginx on :80; the tests run their own instances.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  "${sudo_cmd[@]}" systemctl stop nginx || true
fi
# Without systemd, stop only the daemon the package started (its pid file), never the
# test instances that may be running beside it.
if [ -s /run/nginx.pid ]; then
  "${sudo_cmd[@]}" kill "$(cat /run/nginx.pid)" 2>/dev/null || true
fi
