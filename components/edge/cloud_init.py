"""Cloud-init user-data of the edge instance (Ubuntu 24.04, arm64), and the WireGuard configs.

`render_cloud_init` returns `#cloud-config` YAML that:

- installs nginx, wireguard, jq, openssl and curl from the AMI's Ubuntu archive, certbot
  when a domain is set, and the AWS CLI v2 snap (`aws-cli --classic`: Ubuntu 24.04 has no
  `awscli` deb);
- writes (deferred until the packages are installed, so the nginx package starts on its own
  default config and keeps our conffile) the nginx.conf, the WireGuard interface config
  without any private key, the scripts of `edge_scripts` and their systemd units, and the
  internal CA certificate that verifies the ingress;
- runs `edge-bootstrap` once: it fetches the tunnel's private key from its SSM SecureString
  parameter into /etc/wireguard (0600), brings up wg-quick@<interface>, makes a self-signed
  certificate so nginx can start, renders the API key map from SSM and (re)loads nginx,
  and enables the key refresh timer and, with a domain, the certbot timer (HTTP-01 through
  the webroot; the deploy hook links the certificate and reloads nginx; certbot's own
  timer renews it).

No secret is ever part of the user-data: SSM parameters are passed by name and read at boot
with the instance role. Scripts are exposed by `edge_scripts` so tests can shellcheck them.
"""

from __future__ import annotations

import base64
import gzip
import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import PurePosixPath
from typing import Any, NoReturn

import yaml

from components.edge.nginx_conf import (
    API_KEY_PATTERN,
    CLIENT_NAME_PATTERN,
    NginxSettings,
    render_nginx_conf,
)
from components.edge.wireguard_keys import is_wireguard_key

SCRIPTS_DIR = "/usr/local/sbin"
EC2_USER_DATA_LIMIT_BYTES = 16_384
"""EC2 rejects user-data above 16 KiB (before base64); the edge's is larger uncompressed."""
SYSTEMD_DIR = "/etc/systemd/system"
LETSENCRYPT_LIVE = "/etc/letsencrypt/live"

_SSM_NAME = re.compile(r"^(/[A-Za-z0-9_.-]+)+$|^[A-Za-z0-9_.-]+$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_DOMAIN = re.compile(r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}$")
_INTERFACE = re.compile(r"^[a-z][a-z0-9]{0,14}$")
_PATH = re.compile(r"^/[A-Za-z0-9._/@+-]*$")
_ENDPOINT_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
# What the component passes for the private key when it cannot be known: the offline
# render's "[secret]", or a str.format / Output.format placeholder such as "{0}".
_KEY_PLACEHOLDER = re.compile(r"^(\[secret\]|\{[0-9a-z_]*\})$")


def _fail(field_name: str, value: object, rule: str) -> NoReturn:
    raise ValueError(f"{field_name}: {rule} (got {value!r})")


def _check_public_key(field_name: str, value: str) -> None:
    if not is_wireguard_key(value):
        _fail(field_name, value, "must be a WireGuard public key (base64 of 32 bytes)")


def _interface_section(
    *,
    address: IPv4Interface,
    private_key: str | None,
    private_key_file: str | None,
    listen_port: int | None,
) -> list[str]:
    if (private_key is None) == (private_key_file is None):
        raise ValueError("give exactly one of private_key and private_key_file")
    lines = ["[Interface]", f"Address = {address.with_prefixlen}"]
    if listen_port is not None:
        if not 1 <= listen_port <= 65535:
            _fail("listen_port", listen_port, "must be a port between 1 and 65535")
        lines.append(f"ListenPort = {listen_port}")
    if private_key is not None:
        # Never echo the key in an error.
        if not (is_wireguard_key(private_key) or _KEY_PLACEHOLDER.match(private_key)):
            raise ValueError("private_key: must be base64 of 32 bytes or a placeholder")
        lines.append(f"PrivateKey = {private_key}")
    else:
        assert private_key_file is not None
        if not _PATH.match(private_key_file):
            _fail("private_key_file", private_key_file, "must be an absolute path")
        # wg-quick creates the interface without a key; the key is read from the 0600 file.
        lines.append(f"PostUp = wg set %i private-key {private_key_file}")
    return lines


def _allowed(peer_address: IPv4Address, networks: Sequence[IPv4Network]) -> str:
    entries = [IPv4Network(f"{peer_address}/32"), *networks]
    if len(set(entries)) != len(entries):
        _fail("allowed_ips", [str(n) for n in entries], "must not repeat a network")
    return ", ".join(str(n) for n in entries)


def render_wireguard_edge_conf(
    *,
    address: IPv4Interface,
    listen_port: int,
    home_public_key: str,
    home_address: IPv4Address,
    home_networks: Sequence[IPv4Network] = (),
    private_key: str | None = None,
    private_key_file: str | None = None,
) -> str:
    """wg-quick config of the edge: listens for the home peer, routes its networks.

    Give `private_key_file` on the instance (the key is fetched at boot, never in
    user-data) or `private_key` (a key or a placeholder) elsewhere.
    """
    _check_public_key("home_public_key", home_public_key)
    if home_address not in address.network or home_address == address.ip:
        _fail("home_address", str(home_address), f"must be another host of {address.network}")
    lines = _interface_section(
        address=address,
        private_key=private_key,
        private_key_file=private_key_file,
        listen_port=listen_port,
    )
    lines += [
        "",
        "[Peer]",
        "# home node (k3s), which dials in and keeps the tunnel open",
        f"PublicKey = {home_public_key}",
        f"AllowedIPs = {_allowed(home_address, home_networks)}",
    ]
    return "\n".join(lines) + "\n"


def render_wireguard_home_conf(
    *,
    address: IPv4Interface,
    edge_public_key: str,
    edge_endpoint_host: str,
    edge_endpoint_port: int,
    edge_address: IPv4Address,
    private_key: str | None = None,
    private_key_file: str | None = None,
    persistent_keepalive_seconds: int = 25,
    forward_to_interface: str | None = None,
) -> str:
    """wg-quick config of the home node: dials the edge and keeps the NAT mapping alive.

    With `forward_to_interface`, traffic from the edge is forwarded and masqueraded onto
    that LAN interface (needed when the ingress address is not this node's own).
    """
    _check_public_key("edge_public_key", edge_public_key)
    if not _ENDPOINT_HOST.match(edge_endpoint_host):
        _fail("edge_endpoint_host", edge_endpoint_host, "must be an IPv4 address or DNS name")
    if not 1 <= edge_endpoint_port <= 65535:
        _fail("edge_endpoint_port", edge_endpoint_port, "must be a port between 1 and 65535")
    if edge_address not in address.network or edge_address == address.ip:
        _fail("edge_address", str(edge_address), f"must be another host of {address.network}")
    if not 0 <= persistent_keepalive_seconds <= 65535:
        _fail("persistent_keepalive_seconds", persistent_keepalive_seconds, "must be 0-65535")
    lines = _interface_section(
        address=address,
        private_key=private_key,
        private_key_file=private_key_file,
        listen_port=None,
    )
    if forward_to_interface is not None:
        if not _INTERFACE.match(forward_to_interface):
            _fail("forward_to_interface", forward_to_interface, "must be an interface name")
        rule = f"POSTROUTING -s {edge_address}/32 -o {forward_to_interface} -j MASQUERADE"
        lines += [
            "PostUp = sysctl -q -w net.ipv4.ip_forward=1",
            f"PostUp = iptables -t nat -A {rule}",
            f"PostDown = iptables -t nat -D {rule}",
        ]
    lines += [
        "",
        "[Peer]",
        "# edge gateway on EC2",
        f"PublicKey = {edge_public_key}",
        f"Endpoint = {edge_endpoint_host}:{edge_endpoint_port}",
        f"AllowedIPs = {edge_address}/32",
    ]
    if persistent_keepalive_seconds:
        lines.append(f"PersistentKeepalive = {persistent_keepalive_seconds}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, kw_only=True)
class CloudInitSettings:
    """What the edge's user-data depends on: names and public values only, never a secret."""

    nginx: NginxSettings
    """The edge nginx settings; its paths (keys maps, certificate, webroot) drive the scripts."""
    region: str
    """Region of the SSM parameters (the instance's region)."""
    api_keys_parameter: str
    """SSM SecureString: JSON object client name -> edge API key."""
    client_config_parameter: str
    """SSM String: the two client files of nginx.conf as JSON `{"http": ..., "location":
    ...}` (`nginx_conf.render_client_config`): who may in, each client's limits."""
    wireguard_key_parameter: str
    """SSM SecureString: the edge's WireGuard private key (base64)."""
    wireguard_address: IPv4Interface
    """The edge's tunnel address with the tunnel prefix, e.g. 10.99.0.1/30."""
    home_public_key: str
    home_address: IPv4Address
    """The home peer's tunnel address."""
    home_networks: tuple[IPv4Network, ...] = ()
    """Home networks routed through the tunnel (where the ingress listens)."""
    wireguard_listen_port: int = 51820
    wireguard_interface: str = "wg0"
    upstream_keys_parameter: str | None = None
    """SSM SecureString: JSON client name -> upstream (LiteLLM) key; needs
    `nginx.upstream_keys_map_path`. None: no Authorization is sent upstream."""
    upstream_ca_pem: str | None = None
    """Internal CA certificate (public) written to `nginx.upstream_trusted_ca_path`."""
    domain: str | None = None
    """Public name: Let's Encrypt via HTTP-01. None: a self-signed certificate only."""
    acme_email: str | None = None
    key_refresh_minutes: int = 5
    aws_cli_path: str = "/snap/bin/aws"
    nginx_conf_path: str = "/etc/nginx/nginx.conf"
    scripts_dir: str = SCRIPTS_DIR

    def __post_init__(self) -> None:
        if not _REGION.match(self.region):
            _fail("region", self.region, "must be an AWS region such as eu-west-1")
        names = {
            "api_keys_parameter": self.api_keys_parameter,
            "client_config_parameter": self.client_config_parameter,
            "wireguard_key_parameter": self.wireguard_key_parameter,
        }
        if self.upstream_keys_parameter is not None:
            names["upstream_keys_parameter"] = self.upstream_keys_parameter
        for field_name, name in names.items():
            if len(name) > 1011 or not _SSM_NAME.match(name):
                _fail(field_name, name, "must be an SSM parameter name ([A-Za-z0-9_.-/])")
        if len(set(names.values())) != len(names):
            _fail("api_keys_parameter", sorted(names.values()), "parameters must differ")
        if (self.upstream_keys_parameter is None) != (self.nginx.upstream_keys_map_path is None):
            _fail(
                "upstream_keys_parameter",
                self.upstream_keys_parameter,
                "goes together with nginx.upstream_keys_map_path",
            )
        if self.nginx.upstream_verify and self.upstream_ca_pem is None:
            _fail("upstream_ca_pem", None, "is required while nginx.upstream_verify is on")
        if self.upstream_ca_pem is not None and (
            "-----BEGIN CERTIFICATE-----" not in self.upstream_ca_pem
            or "PRIVATE KEY" in self.upstream_ca_pem
        ):
            _fail("upstream_ca_pem", "<pem>", "must hold PEM certificates only, no private key")
        if self.upstream_ca_pem is not None and self.nginx.upstream_trusted_ca_path is None:
            _fail("upstream_ca_pem", "<pem>", "needs nginx.upstream_trusted_ca_path")
        _check_public_key("home_public_key", self.home_public_key)
        if self.home_address not in self.wireguard_address.network:
            _fail("home_address", str(self.home_address), "must lie in the tunnel network")
        if not 1024 <= self.wireguard_listen_port <= 65535:
            _fail("wireguard_listen_port", self.wireguard_listen_port, "must be 1024-65535")
        if not _INTERFACE.match(self.wireguard_interface):
            _fail("wireguard_interface", self.wireguard_interface, "must be an interface name")
        if self.domain is not None:
            if not _DOMAIN.match(self.domain):
                _fail("domain", self.domain, "must be a lowercase DNS name")
            if self.acme_email is None or not _EMAIL.match(self.acme_email):
                _fail("acme_email", self.acme_email, "a valid email is required with a domain")
            if self.nginx.server_name != self.domain:
                _fail("nginx.server_name", self.nginx.server_name, "must equal domain")
        elif self.acme_email is not None:
            _fail("acme_email", self.acme_email, "is only used with a domain")
        if self.nginx.ocsp_stapling and self.domain is None:
            _fail("nginx.ocsp_stapling", True, "needs a CA-issued certificate (set domain)")
        if not 1 <= self.key_refresh_minutes <= 1440:
            _fail("key_refresh_minutes", self.key_refresh_minutes, "must be 1-1440")
        for field_name, path in (
            ("aws_cli_path", self.aws_cli_path),
            ("nginx_conf_path", self.nginx_conf_path),
            ("scripts_dir", self.scripts_dir),
        ):
            if not _PATH.match(path):
                _fail(field_name, path, "must be an absolute path")

    @property
    def wireguard_key_path(self) -> str:
        """Where the boot script writes the tunnel's private key (0600)."""
        return f"/etc/wireguard/{self.wireguard_interface}.key"

    def script_path(self, name: str) -> str:
        """Path of one of the generated scripts on the instance."""
        return f"{self.scripts_dir}/{name}"


_KEY_SET_CHECKS = (
    'if type != "object" then error("not a JSON object of client name to key") else . end'
    f' | to_entries | if any(.[]; .key | test("{CLIENT_NAME_PATTERN}") | not)'
    ' then error("a client name is not a DNS label") else . end'
    f' | if any(.[]; (.value | type) != "string" or (.value | test("{API_KEY_PATTERN}") | not))'
    ' then error("a key is not 16-128 characters of [A-Za-z0-9._~+/=-]") else . end'
)
"""jq: a key set parameter (JSON client name -> key) as entries, every name and key checked."""


def api_keys_jq_filter() -> str:
    """jq program turning the API keys parameter (JSON name -> key) into the keys map file.

    A malformed name or key, or a shared key, fails the whole refresh (errors never print a
    key); a key of a client the client files do not list maps to nobody nginx lets in.
    Output equals `render_api_keys_map`.
    """
    return (
        _KEY_SET_CHECKS + " | if (map(.value | ascii_downcase) | unique | length) != length"
        ' then error("two clients share a key") else . end'
        # Each key an anchored regular expression, `.` and `+` escaped (nginx_conf.key_pattern).
        r' | sort_by(.key) | .[] | "\"~^Bearer \(.value | gsub("(?<c>[.+])"; "\\\(.c)"))$\" \"\(.key)\";"'
    )


def upstream_keys_jq_filter() -> str:
    """jq program for the upstream keys map; output equals `render_upstream_keys_map`."""
    return _KEY_SET_CHECKS + ' | sort_by(.key) | .[] | "\\"\\(.key)\\" \\"Bearer \\(.value)\\";"'


def client_config_jq_filter(part: str) -> str:
    """jq program writing one of the client files (`http` or `location`) verbatim from the
    client config parameter; anything else than a JSON object of two texts is refused."""
    return (
        'if type == "object" and (.http | type) == "string" and (.location | type) == "string"'
        ' then . else error("not a JSON object of the two client files") end'
        # `jq -r` ends what it prints with a newline: the file's own is dropped first.
        f' | .{part} | rtrimstr("\\n")'
    )


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _ssm_function(settings: CloudInitSettings) -> str:
    return f"""readonly AWS_CLI={settings.aws_cli_path}
readonly REGION={settings.region}

# ssm_get NAME: prints the decrypted value of an SSM parameter; retries while the
# network, the instance role or the aws-cli snap are not ready yet.
ssm_get() {{
  local attempt
  for attempt in 1 2 3 4 5 6; do
    if "$AWS_CLI" ssm get-parameter --region "$REGION" --name "$1" --with-decryption \\
      --query Parameter.Value --output text; then
      return 0
    fi
    echo "edge: reading SSM parameter $1 failed (attempt $attempt of 6)" >&2
    sleep 5
  done
  return 1
}}
"""


def _refresh_script(settings: CloudInitSettings) -> str:
    nginx = settings.nginx
    lock = str(PurePosixPath(nginx.keys_map_path).parent / ".edge-refresh-keys.lock")
    maps = [
        (settings.api_keys_parameter, nginx.keys_map_path, api_keys_jq_filter()),
        (settings.client_config_parameter, nginx.client_http_path, client_config_jq_filter("http")),
        (
            settings.client_config_parameter,
            nginx.client_limits_path,
            client_config_jq_filter("location"),
        ),
    ]
    if settings.upstream_keys_parameter is not None and nginx.upstream_keys_map_path:
        maps.append(
            (
                settings.upstream_keys_parameter,
                nginx.upstream_keys_map_path,
                upstream_keys_jq_filter(),
            )
        )
    stages = "\n".join(
        f"stage_map {_sh_quote(param)} {path} {_sh_quote(jq)}" for param, path, jq in maps
    )
    targets = " ".join(path for _, path, _ in maps)
    return f"""#!/bin/bash
# Generated by llm-platform: renders the edge's API key maps and client files (who may in,
# each client's limits) from SSM and reloads nginx gracefully, only when one changed and
# the new config passes `nginx -t`.
set -euo pipefail
umask 027

{_ssm_function(settings)}
readonly NGINX_CONF={settings.nginx_conf_path}
readonly LOCK={lock}
readonly TARGETS=({targets})

# Each parameter read once per run: the two client files come from one version of theirs.
declare -A VALUES=()

# stage_map PARAMETER TARGET FILTER: writes TARGET.new (0640) from the parameter's JSON.
stage_map() {{
  if [ -z "${{VALUES[$1]+set}}" ]; then
    VALUES[$1]=$(ssm_get "$1")
  fi
  if ! printf '%s' "${{VALUES[$1]}}" | jq -r "$3" >"$2.new"; then
    rm -f "$2.new"
    echo "edge-refresh-keys: SSM parameter $1 is malformed; keeping $2" >&2
    return 1
  fi
  chmod 0640 "$2.new"
}}

for target in "${{TARGETS[@]}}"; do
  install -d -m 0750 "$(dirname "$target")"
done
exec 9>"$LOCK"
flock -w 120 9

cleanup() {{
  local target
  for target in "${{TARGETS[@]}}"; do
    rm -f "$target.new" "$target.previous"
  done
}}
trap cleanup EXIT

{stages}

changed=()
for target in "${{TARGETS[@]}}"; do
  if [ -e "$target" ] && cmp -s "$target.new" "$target"; then
    rm -f "$target.new"
  else
    changed+=("$target")
  fi
done
if [ "${{#changed[@]}}" -eq 0 ]; then
  exit 0
fi

for target in "${{changed[@]}}"; do
  if [ -e "$target" ]; then
    cp -p "$target" "$target.previous"
  fi
  mv -f "$target.new" "$target"
done

if ! nginx -t -q -c "$NGINX_CONF"; then
  echo "edge-refresh-keys: nginx rejects the new key maps or client files; restoring the previous ones" >&2
  for target in "${{changed[@]}}"; do
    if [ -e "$target.previous" ]; then
      mv -f "$target.previous" "$target"
    else
      rm -f "$target"
    fi
  done
  exit 1
fi

systemctl reload-or-restart nginx.service
echo "edge-refresh-keys: reloaded nginx with ${{#changed[@]}} changed file(s)"
"""


def _wireguard_key_script(settings: CloudInitSettings) -> str:
    key_path = settings.wireguard_key_path
    return f"""#!/bin/bash
# Generated by llm-platform: writes the edge's WireGuard private key from SSM (0600).
set -euo pipefail
umask 077

{_ssm_function(settings)}
readonly PARAMETER={_sh_quote(settings.wireguard_key_parameter)}
readonly KEY_FILE={key_path}

key=$(ssm_get "$PARAMETER")
if ! [[ $key =~ ^[A-Za-z0-9+/]{{42}}[AEIMQUYcgkosw048]=$ ]]; then
  echo "edge-wireguard-key: $PARAMETER does not hold a WireGuard key" >&2
  exit 1
fi
install -d -m 0700 "$(dirname "$KEY_FILE")"
staged=$(mktemp "$KEY_FILE.XXXXXX")
trap 'rm -f "$staged"' EXIT
printf '%s\\n' "$key" >"$staged"
chmod 0600 "$staged"
mv -f "$staged" "$KEY_FILE"
"""


def _selfsigned_script(settings: CloudInitSettings) -> str:
    nginx = settings.nginx
    common_name = settings.domain or "llm-edge"
    chain = nginx.ocsp_trusted_chain_path
    chain_step = (
        f"""
# Until certbot links the real chain, nginx needs some file at the OCSP chain path.
if [ ! -s {chain} ]; then
  cp "$CERT" {chain}
fi
"""
        if chain is not None
        else ""
    )
    return f"""#!/bin/bash
# Generated by llm-platform: a self-signed certificate so nginx can start before (or
# without) Let's Encrypt. Does nothing when a certificate is already in place.
set -euo pipefail
umask 077

readonly CERT={nginx.tls_certificate_path}
readonly KEY={nginx.tls_key_path}

if [ -s "$CERT" ] && [ -s "$KEY" ]; then
  exit 0
fi

names="DNS:{common_name}"
# The public IPv4 address from the instance metadata (IMDSv2), when there is one.
if token=$(curl -sf --max-time 2 -X PUT http://169.254.169.254/latest/api/token \\
  -H "X-aws-ec2-metadata-token-ttl-seconds: 60"); then
  if ip=$(curl -sf --max-time 2 -H "X-aws-ec2-metadata-token: $token" \\
    http://169.254.169.254/latest/meta-data/public-ipv4) &&
    [[ $ip =~ ^[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}$ ]]; then
    names="$names,IP:$ip"
  fi
fi

install -d -m 0750 "$(dirname "$CERT")" "$(dirname "$KEY")"
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -nodes \\
  -days 825 -subj "/CN={common_name}" -addext "subjectAltName=$names" \\
  -keyout "$workdir/key.pem" -out "$workdir/cert.pem" 2>/dev/null
chmod 0600 "$workdir/key.pem"
chmod 0644 "$workdir/cert.pem"
mv -f "$workdir/key.pem" "$KEY"
mv -f "$workdir/cert.pem" "$CERT"
{chain_step}"""


def _certbot_script(settings: CloudInitSettings) -> str:
    assert settings.domain is not None and settings.acme_email is not None
    return f"""#!/bin/bash
# Generated by llm-platform: obtains the Let's Encrypt certificate (HTTP-01 through the
# nginx webroot) until it exists; certbot.timer renews it and runs the deploy hook.
set -euo pipefail

if [ -s {LETSENCRYPT_LIVE}/{settings.domain}/fullchain.pem ]; then
  exec {settings.script_path("edge-cert-deploy")}
fi
install -d -m 0755 {settings.nginx.acme_webroot}
certbot certonly --non-interactive --agree-tos --no-eff-email \\
  --email {_sh_quote(settings.acme_email)} --webroot -w {settings.nginx.acme_webroot} \\
  -d {settings.domain} --keep-until-expiring \\
  --deploy-hook {settings.script_path("edge-cert-deploy")}
"""


def _cert_deploy_script(settings: CloudInitSettings) -> str:
    assert settings.domain is not None
    nginx = settings.nginx
    live = f"{LETSENCRYPT_LIVE}/{settings.domain}"
    chain = (
        f'ln -sfn "$LIVE/chain.pem" {nginx.ocsp_trusted_chain_path}\n'
        if nginx.ocsp_trusted_chain_path is not None
        else ""
    )
    return f"""#!/bin/bash
# Generated by llm-platform: certbot deploy hook; points nginx at the Let's Encrypt
# files and reloads it gracefully when the config passes `nginx -t`.
set -euo pipefail

readonly LIVE={live}
ln -sfn "$LIVE/fullchain.pem" {nginx.tls_certificate_path}
ln -sfn "$LIVE/privkey.pem" {nginx.tls_key_path}
{chain}nginx -t -q -c {settings.nginx_conf_path}
systemctl reload-or-restart nginx.service
"""


def _bootstrap_script(settings: CloudInitSettings) -> str:
    iface = settings.wireguard_interface
    certbot = (
        "systemctl enable --now edge-certbot.timer\n"
        "systemctl start --no-block edge-certbot.service\n"
        if settings.domain is not None
        else ""
    )
    return f"""#!/bin/bash
# Generated by llm-platform: first boot of the edge gateway (run once by cloud-init).
set -euo pipefail

# A failed step does not stop the others (nginx answers 502 without the tunnel); the
# exit status, seen in `cloud-init status`, still reports it.
status=0
install -d -m 0755 {settings.nginx.acme_webroot}
if {settings.script_path("edge-wireguard-key")}; then
  systemctl enable --now wg-quick@{iface}.service || status=1
else
  echo "edge-bootstrap: no WireGuard key; rerun {settings.script_path("edge-bootstrap")}" >&2
  status=1
fi
{settings.script_path("edge-selfsigned-cert")} || status=1
systemctl daemon-reload
if ! {settings.script_path("edge-refresh-keys")}; then
  echo "edge-bootstrap: API keys not loaded yet; edge-refresh-keys.timer retries" >&2
  status=1
fi
systemctl enable nginx.service
systemctl enable --now edge-refresh-keys.timer
{certbot}exit "$status"
"""


def edge_scripts(settings: CloudInitSettings) -> dict[str, str]:
    """Every shell script the user-data installs: path on the instance -> script text."""
    scripts = {
        "edge-bootstrap": _bootstrap_script(settings),
        "edge-wireguard-key": _wireguard_key_script(settings),
        "edge-refresh-keys": _refresh_script(settings),
        "edge-selfsigned-cert": _selfsigned_script(settings),
    }
    if settings.domain is not None:
        scripts["edge-certbot"] = _certbot_script(settings)
        scripts["edge-cert-deploy"] = _cert_deploy_script(settings)
    return {settings.script_path(name): text for name, text in scripts.items()}


def _oneshot_unit(description: str, exec_start: str, condition: str | None = None) -> str:
    lines = [
        "[Unit]",
        f"Description={description}",
        "Wants=network-online.target",
        "After=network-online.target nginx.service",
    ]
    if condition is not None:
        lines.append(condition)
    lines += ["", "[Service]", "Type=oneshot", f"ExecStart={exec_start}"]
    return "\n".join(lines) + "\n"


def _timer_unit(description: str, every_minutes: int) -> str:
    return (
        f"[Unit]\nDescription={description}\n\n"
        f"[Timer]\nOnBootSec=2min\nOnUnitActiveSec={every_minutes}min\n"
        "RandomizedDelaySec=30s\n\n[Install]\nWantedBy=timers.target\n"
    )


def systemd_units(settings: CloudInitSettings) -> dict[str, str]:
    """The systemd units the user-data installs: path on the instance -> unit text."""
    units = {
        "edge-refresh-keys.service": _oneshot_unit(
            "Refresh the edge API keys from SSM and reload nginx on change",
            settings.script_path("edge-refresh-keys"),
        ),
        "edge-refresh-keys.timer": _timer_unit(
            "Refresh the edge API keys periodically", settings.key_refresh_minutes
        ),
    }
    if settings.domain is not None:
        units["edge-certbot.service"] = _oneshot_unit(
            "Obtain the edge's Let's Encrypt certificate",
            settings.script_path("edge-certbot"),
            f"ConditionPathExists=!{LETSENCRYPT_LIVE}/{settings.domain}/fullchain.pem",
        )
        # Retries after a failed first try (DNS not pointing here yet); 20 minutes keeps
        # well inside Let's Encrypt's failed-validation limit.
        units["edge-certbot.timer"] = _timer_unit("Retry obtaining the certificate", 20)
    return {f"{SYSTEMD_DIR}/{name}": text for name, text in units.items()}


class _LiteralDumper(yaml.SafeDumper):
    """Dumps multi-line strings as literal blocks so the user-data reads like the files."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _str_representer)


def _file(path: str, content: str, permissions: str) -> dict[str, Any]:
    # Deferred: written after the packages are installed (and their conffiles in place).
    return {
        "path": path,
        "content": content,
        "owner": "root:root",
        "permissions": permissions,
        "defer": True,
    }


def render_cloud_init(settings: CloudInitSettings) -> str:
    """The `#cloud-config` user-data of the edge instance (no secret in it)."""
    packages = [
        "nginx",
        "libnginx-mod-http-headers-more-filter",
        "wireguard",
        "jq",
        "openssl",
        "curl",
    ]
    if settings.domain is not None:
        packages.append("certbot")
    wg_conf = render_wireguard_edge_conf(
        address=settings.wireguard_address,
        listen_port=settings.wireguard_listen_port,
        home_public_key=settings.home_public_key,
        home_address=settings.home_address,
        home_networks=settings.home_networks,
        private_key_file=settings.wireguard_key_path,
    )
    files = [
        _file(settings.nginx_conf_path, render_nginx_conf(settings.nginx), "0644"),
        _file(f"/etc/wireguard/{settings.wireguard_interface}.conf", wg_conf, "0600"),
    ]
    if settings.upstream_ca_pem is not None and settings.nginx.upstream_trusted_ca_path:
        ca = settings.upstream_ca_pem.strip() + "\n"
        files.append(_file(settings.nginx.upstream_trusted_ca_path, ca, "0644"))
    files += [_file(path, text, "0755") for path, text in edge_scripts(settings).items()]
    files += [_file(path, text, "0644") for path, text in systemd_units(settings).items()]
    document: dict[str, Any] = {
        "package_update": True,
        "packages": packages,
        # Ubuntu 24.04 ships no awscli deb; the AWS-published snap is the CLI v2.
        "snap": {"commands": [["snap", "install", "aws-cli", "--classic"]]},
        "write_files": files,
        "runcmd": [[settings.script_path("edge-bootstrap")]],
    }
    body = yaml.dump(
        document, Dumper=_LiteralDumper, sort_keys=False, default_flow_style=False, width=1000
    )
    return "#cloud-config\n" + body


def compress_user_data(user_data: str) -> str:
    """Base64 of the gzip-compressed user-data, for `aws.ec2.Instance(user_data_base64=...)`.

    The plain YAML exceeds EC2's 16 KiB limit; cloud-init recognises gzip by its magic bytes.
    The gzip header carries no timestamp or file name, so the output is deterministic.
    """
    packed = gzip.compress(user_data.encode("utf-8"), compresslevel=9, mtime=0)
    if len(packed) > EC2_USER_DATA_LIMIT_BYTES:
        raise ValueError(
            f"user-data is {len(packed)} bytes gzip-compressed, over EC2's "
            f"{EC2_USER_DATA_LIMIT_BYTES}; fewer clients or a smaller nginx.conf are needed"
        )
    return base64.b64encode(packed).decode("ascii")
