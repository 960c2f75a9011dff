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
pkill -x nginx 2>/dev/null || true
pkill -x redis-server 2>/dev/null || true
