#!/usr/bin/env bash
# Installs the system tools the test suite runs the generated artifacts in.
# Idempotent: does nothing when every tool is already present.
set -euo pipefail

packages=(nginx shellcheck cloud-init wrk openssl curl wireguard-tools redis-server)
commands=(nginx shellcheck cloud-init wrk openssl curl wg redis-server)

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
# The Debian packages start nginx on :80 and Redis on :6379; the tests run their own.
for service in nginx redis-server; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "${service}" 2>/dev/null; then
    "${sudo_cmd[@]}" systemctl stop "${service}" || true
  fi
done
# Without systemd, stop only the daemons the packages started (their pid files), never the
# test instances that may be running beside them.
for pid_file in /run/nginx.pid /run/redis/redis-server.pid; do
  if [ -s "${pid_file}" ]; then
    "${sudo_cmd[@]}" kill "$(cat "${pid_file}")" 2>/dev/null || true
  fi
done
