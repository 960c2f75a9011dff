"""The edge user-data through real tools: `cloud-init schema`, shellcheck, bash, jq, and the
key refresh script run for real against a fake `aws` and a fake `systemctl`."""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import stat
import subprocess
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest
import yaml

from components.edge.cloud_init import (
    EC2_USER_DATA_LIMIT_BYTES,
    CloudInitSettings,
    api_keys_jq_filter,
    client_config_jq_filter,
    compress_user_data,
    edge_scripts,
    render_cloud_init,
    upstream_keys_jq_filter,
)
from components.edge.nginx_conf import (
    ClientLimit,
    NginxSettings,
    render_api_keys_map,
    render_client_config,
    render_upstream_keys_map,
)
from components.edge.wireguard_keys import private_key_from_random_bytes, wireguard_public_key
from tests.artifacts.edge.nginx_harness import EdgeFixture, nginx_binary
from tests.fakes.upstream import TestPki

EDGE_PRIVATE = private_key_from_random_bytes(base64.b64encode(b"\x11" * 32).decode())
HOME_PRIVATE = private_key_from_random_bytes(base64.b64encode(b"\x22" * 32).decode())
CA_PEM = TestPki().ca_pem.decode()
CLIENTS = (
    ClientLimit(name="alice", requests_per_second=5, burst=10),
    ClientLimit(name="bob", requests_per_second=1, burst=2),
)


def _settings(
    domain: str | None, *, upstream_keys: bool = True, **overrides: object
) -> CloudInitSettings:
    nginx = NginxSettings(
        upstreams=("192.168.1.50:443",),
        upstream_sni="ingress.internal",
        server_name=domain,
        upstream_keys_map_path="/etc/nginx/edge/upstream-keys.map" if upstream_keys else None,
        ocsp_stapling=domain is not None,
        ocsp_trusted_chain_path="/etc/nginx/edge/tls/chain.pem" if domain else None,
        resolver="169.254.169.253" if domain else None,
    )
    settings = CloudInitSettings(
        nginx=nginx,
        region="eu-west-1",
        api_keys_parameter="/llm-platform/dev/edge/api-keys",
        client_config_parameter="/llm-platform/dev/edge/client-config",
        wireguard_key_parameter="/llm-platform/dev/edge/wireguard-key",
        upstream_keys_parameter="/llm-platform/dev/edge/upstream-keys" if upstream_keys else None,
        upstream_ca_pem=CA_PEM,
        wireguard_address=IPv4Interface("10.99.0.1/30"),
        home_public_key=wireguard_public_key(HOME_PRIVATE),
        home_address=IPv4Address("10.99.0.2"),
        home_networks=(IPv4Network("192.168.1.0/24"),),
        domain=domain,
        acme_email="ops@example.com" if domain else None,
    )
    return replace(settings, **overrides)  # type: ignore[arg-type]


VARIANTS = {
    "self-signed": _settings(None, upstream_keys=False),
    "lets-encrypt": _settings("api.example.com"),
}


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (run scripts/install-system-tools.sh)")
    return found


def _scripts() -> list[object]:
    return [
        pytest.param(variant, path, text, id=f"{variant}-{Path(path).name}")
        for variant, settings in VARIANTS.items()
        for path, text in edge_scripts(settings).items()
    ]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cloud_init_schema_accepts_the_user_data(variant: str, tmp_path: Path) -> None:
    cloud_init = _tool("cloud-init")
    user_data = tmp_path / "user-data.yaml"
    user_data.write_text(render_cloud_init(VARIANTS[variant]))
    result = subprocess.run(
        [cloud_init, "schema", "--config-file", str(user_data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_cloud_init_schema_rejects_a_broken_document(tmp_path: Path) -> None:
    """Guards the check above: the schema really is applied."""
    cloud_init = _tool("cloud-init")
    user_data = tmp_path / "user-data.yaml"
    user_data.write_text(
        "#cloud-config\nwrite_files:\n- path: /x\n  permissions: 644\n  defer: maybe\n"
    )
    result = subprocess.run(
        [cloud_init, "schema", "--config-file", str(user_data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0


@pytest.mark.parametrize(("variant", "path", "text"), _scripts())
def test_scripts_pass_shellcheck_and_bash_n(
    variant: str, path: str, text: str, tmp_path: Path
) -> None:
    shellcheck = _tool("shellcheck")
    script = tmp_path / Path(path).name
    script.write_text(text)
    assert text.startswith("#!/bin/bash\n")
    checked = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout
    parsed = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert parsed.returncode == 0, parsed.stderr


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_user_data_installs_every_script_and_holds_no_secret(variant: str) -> None:
    settings = VARIANTS[variant]
    text = render_cloud_init(settings)
    assert text.startswith("#cloud-config\n")
    document = yaml.safe_load(text)
    files = {entry["path"]: entry for entry in document["write_files"]}
    for path, script in edge_scripts(settings).items():
        assert files[path]["content"] == script
        assert files[path]["permissions"] == "0755"
    assert all(entry["defer"] is True for entry in files.values())
    wg = files["/etc/wireguard/wg0.conf"]
    assert wg["permissions"] == "0600"
    assert "PrivateKey" not in wg["content"]
    assert "PostUp = wg set %i private-key /etc/wireguard/wg0.key" in wg["content"]
    assert EDGE_PRIVATE not in text and HOME_PRIVATE not in text
    assert "PRIVATE KEY" not in text
    assert files["/etc/nginx/edge/upstream-ca.pem"]["content"].strip() == CA_PEM.strip()
    assert document["runcmd"] == [["/usr/local/sbin/edge-bootstrap"]]
    assert ("certbot" in document["packages"]) == (settings.domain is not None)
    assert "awscli" not in document["packages"]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed (not Debian)")
def test_the_nginx_module_the_config_loads_is_the_one_the_user_data_installs() -> None:
    """The package cloud-init installs ships the module path nginx.conf loads (asked of this
    Debian machine's dpkg, where scripts/install-system-tools.sh installed the same package)."""
    settings = VARIANTS["self-signed"]
    document = yaml.safe_load(render_cloud_init(settings))
    files = {entry["path"]: entry for entry in document["write_files"]}
    module = settings.nginx.headers_more_module_path
    assert f"load_module {module};" in files[settings.nginx_conf_path]["content"]
    owner = subprocess.run(
        ["dpkg", "-S", module], capture_output=True, text=True, timeout=30, check=False
    )
    assert owner.returncode == 0, owner.stderr
    package = owner.stdout.split(":", 1)[0]
    assert package in document["packages"]


def test_certbot_pieces_only_with_a_domain() -> None:
    with_domain = edge_scripts(VARIANTS["lets-encrypt"])
    without = edge_scripts(VARIANTS["self-signed"])
    assert "/usr/local/sbin/edge-certbot" in with_domain
    assert "--webroot -w /var/www/acme" in with_domain["/usr/local/sbin/edge-certbot"]
    assert (
        "--deploy-hook /usr/local/sbin/edge-cert-deploy"
        in with_domain["/usr/local/sbin/edge-certbot"]
    )
    assert not any("certbot" in path for path in without)
    assert "edge-certbot.timer" in render_cloud_init(VARIANTS["lets-encrypt"])
    assert "edge-certbot" not in render_cloud_init(VARIANTS["self-signed"])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_compressed_user_data_fits_ec2_and_round_trips(variant: str) -> None:
    text = render_cloud_init(VARIANTS[variant])
    packed = compress_user_data(text)
    raw = base64.b64decode(packed)
    assert len(raw) <= EC2_USER_DATA_LIMIT_BYTES
    assert gzip.decompress(raw).decode() == text
    assert compress_user_data(text) == packed  # no timestamp in the gzip header


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"region": "Europe"}, "region"),
        ({"api_keys_parameter": "bad name with spaces"}, "api_keys_parameter"),
        ({"wireguard_key_parameter": "/llm-platform/dev/edge/api-keys"}, "parameter"),
        ({"home_public_key": "not-a-key"}, "home_public_key"),
        ({"home_address": IPv4Address("10.98.0.2")}, "home_address"),
        ({"upstream_ca_pem": None}, "upstream_ca_pem"),
        ({"upstream_ca_pem": CA_PEM + "-----BEGIN PRIVATE KEY-----\n"}, "upstream_ca_pem"),
        ({"acme_email": "ops@example.com"}, "acme_email"),
        ({"upstream_keys_parameter": "/x/upstream"}, "upstream_keys_parameter"),
    ],
)
def test_invalid_settings_are_rejected_naming_the_field(
    overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        _settings(None, upstream_keys=False, **overrides)


def test_domain_must_match_the_nginx_server_name() -> None:
    settings = _settings("api.example.com")
    with pytest.raises(ValueError, match="server_name"):
        replace(settings, domain="other.example.com")


def _jq(program: str, document: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("jq"), "-r", program],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_instance_renders_the_same_files_as_python() -> None:
    keys = {"bob": "sk-edge-bobbobbobbobbob01", "alice": "sk-edge-alicealicealice01"}
    rendered = _jq(api_keys_jq_filter(), keys)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout == render_api_keys_map(keys)
    upstream = {"alice": "sk-up-alicealicealice0001"}
    rendered = _jq(upstream_keys_jq_filter(), upstream)
    assert rendered.stdout == render_upstream_keys_map(upstream)
    files = render_client_config(CLIENTS, anon_requests_per_second=2)
    for part, text in (("http", files.http), ("location", files.location)):
        written = _jq(client_config_jq_filter(part), json.loads(files.parameter_value()))
        assert written.returncode == 0, written.stderr
        assert written.stdout == text


@pytest.mark.parametrize(
    "document",
    [["http"], {"http": "x"}, {"http": 1, "location": "y"}, "text"],
    ids=["list", "one-file", "not-text", "string"],
)
def test_the_instance_refuses_a_malformed_client_config(document: object) -> None:
    for part in ("http", "location"):
        assert _jq(client_config_jq_filter(part), document).returncode != 0


@pytest.mark.parametrize(
    "document",
    [
        ["sk-edge-alicealicealice01"],
        {"alice": 1234567890123456789},
        {"alice": 'sk-edge-"quoted"-0123456789'},
        {"alice": "sk-edge-SAMEsameSAME01", "bob": "sk-edge-samesamesame01"},
    ],
    ids=["not-object", "number", "quote", "shared"],
)
def test_the_instance_refuses_malformed_keys_without_printing_them(document: object) -> None:
    rendered = _jq(api_keys_jq_filter(), document)
    assert rendered.returncode != 0
    assert "sk-edge" not in rendered.stdout + rendered.stderr
    assert "1234567890" not in rendered.stderr


class _Instance:
    """Fake `aws` and `systemctl` on PATH, SSM parameters in files, real nginx and jq."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.ssm = root / "ssm"
        self.bin.mkdir(parents=True)
        self.ssm.mkdir(parents=True)
        self.aws = self.bin / "aws"
        self.aws.write_text(
            "#!/bin/bash\n"
            'echo "$*" >>"$FAKE_ROOT/aws.log"\n'
            'while [ $# -gt 0 ]; do [ "$1" = --name ] && name=$2; shift; done\n'
            'cat "$FAKE_ROOT/ssm/${name//\\//_}"\n'
        )
        systemctl = self.bin / "systemctl"
        systemctl.write_text('#!/bin/bash\necho "$*" >>"$FAKE_ROOT/systemctl.log"\n')
        for tool in (self.aws, systemctl):
            tool.chmod(0o755)

    def put(self, name: str, value: object) -> None:
        (self.ssm / name.replace("/", "_")).write_text(json.dumps(value))

    def systemctl_calls(self) -> list[str]:
        log = self.root / "systemctl.log"
        return log.read_text().splitlines() if log.exists() else []

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        path = self.root / "edge-refresh-keys"
        path.write_text(script)
        path.chmod(0o755)
        env = {
            **os.environ,
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "FAKE_ROOT": str(self.root),
        }
        return subprocess.run(
            [str(path)], capture_output=True, text=True, timeout=60, env=env, check=False
        )


def test_refresh_script_renders_validates_and_reloads_only_on_change(tmp_path: Path) -> None:
    nginx_binary()
    _tool("jq")
    instance = _Instance(tmp_path / "instance")
    fixture = EdgeFixture(tmp_path / "edge", TestPki(), upstream_port=9443)
    nginx = fixture.settings(CLIENTS)
    settings = replace(
        _settings(None),
        nginx=nginx,
        aws_cli_path=str(instance.aws),
        nginx_conf_path=str(fixture.conf),
    )
    fixture.conf.write_text(render_cloud_init_nginx(settings))
    script = edge_scripts(settings)["/usr/local/sbin/edge-refresh-keys"]
    keys = {"alice": "sk-edge-alicealicealice01", "ghost": "sk-edge-ghostghostghost1"}
    upstream = {"alice": "sk-up-alicealicealice0001"}
    instance.put(settings.api_keys_parameter, keys)
    assert settings.upstream_keys_parameter is not None
    instance.put(settings.upstream_keys_parameter, upstream)
    clients = render_client_config(CLIENTS, anon_requests_per_second=2)
    instance.put(settings.client_config_parameter, json.loads(clients.parameter_value()))
    keys_map = Path(nginx.keys_map_path)

    first = instance.run(script)
    assert first.returncode == 0, first.stderr
    # Every key is mapped; only the clients of the client files are let in (no "ghost").
    assert keys_map.read_text() == render_api_keys_map(keys)
    assert Path(nginx.client_http_path).read_text() == clients.http
    assert Path(nginx.client_limits_path).read_text() == clients.location
    assert '"ghost"' not in clients.http
    assert stat.S_IMODE(keys_map.stat().st_mode) == 0o640
    assert instance.systemctl_calls() == ["reload-or-restart nginx.service"]
    aws_log = (instance.root / "aws.log").read_text()
    assert "--with-decryption" in aws_log and "sk-edge" not in aws_log
    # One read per parameter: the two client files come from the same read of theirs.
    reads = [line.split("--name ")[1].split()[0] for line in aws_log.splitlines()]
    assert sorted(reads) == sorted(
        {
            settings.api_keys_parameter,
            settings.upstream_keys_parameter,
            settings.client_config_parameter,
        }
    )

    unchanged = instance.run(script)
    assert unchanged.returncode == 0, unchanged.stderr
    assert len(instance.systemctl_calls()) == 1  # nothing changed, no reload

    instance.put(settings.api_keys_parameter, {"alice": "sk-edge-bad key with spaces"})
    refused = instance.run(script)
    assert refused.returncode != 0
    assert "bad key" not in refused.stdout + refused.stderr
    assert keys_map.read_text() == render_api_keys_map(keys)
    assert len(instance.systemctl_calls()) == 1

    instance.put(
        settings.api_keys_parameter,
        {"alice": "sk-edge-rotatedrotated01", "bob": "sk-edge-bobbobbobbobbob01"},
    )
    rotated = instance.run(script)
    assert rotated.returncode == 0, rotated.stderr
    assert "rotatedrotated" in keys_map.read_text() and '"bob";' in keys_map.read_text()
    assert len(instance.systemctl_calls()) == 2
    assert not list(keys_map.parent.glob("*.new")) and not list(keys_map.parent.glob("*.previous"))

    # A client re-limited and one added: only the client files change, nginx reloads.
    relimited = render_client_config(
        (
            ClientLimit(name="alice", requests_per_second=5, burst=10),
            ClientLimit(name="bob", requests_per_second=3, burst=6),
            ClientLimit(name="carol", requests_per_second=0.5, burst=1),
        ),
        anon_requests_per_second=2,
    )
    instance.put(settings.client_config_parameter, json.loads(relimited.parameter_value()))
    limited = instance.run(script)
    assert limited.returncode == 0, limited.stderr
    assert Path(nginx.client_http_path).read_text() == relimited.http
    assert "rate=3r/s" in relimited.http and "zone=edge_client_carol" in relimited.location
    assert len(instance.systemctl_calls()) == 3

    # A client config nginx refuses is rolled back whole; nginx is not reloaded.
    instance.put(
        settings.client_config_parameter,
        {"http": "limit_req_zone nonsense;\n", "location": relimited.location},
    )
    broken = instance.run(script)
    assert broken.returncode != 0 and "restoring the previous ones" in broken.stderr
    assert Path(nginx.client_http_path).read_text() == relimited.http
    assert len(instance.systemctl_calls()) == 3


def render_cloud_init_nginx(settings: CloudInitSettings) -> str:
    """The nginx.conf exactly as the user-data writes it."""
    document = yaml.safe_load(render_cloud_init(settings))
    contents = [
        f["content"] for f in document["write_files"] if f["path"] == settings.nginx_conf_path
    ]
    assert len(contents) == 1
    return str(contents[0])
