"""WireGuard keys against RFC 7748 and the real `wg`, and the two ends' configs agreeing."""

from __future__ import annotations

import base64
import shutil
import subprocess
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.edge.cloud_init import render_wireguard_edge_conf, render_wireguard_home_conf
from components.edge.wireguard_keys import (
    is_wireguard_key,
    private_key_from_random_bytes,
    wireguard_public_key,
)

# RFC 7748 section 6.1 (X25519 Diffie-Hellman): Alice's private and public key, hex.
RFC7748_ALICE_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
RFC7748_ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"


def _b64(hex_text: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_text)).decode()


def _wg() -> str:
    found = shutil.which("wg")
    if found is None:
        pytest.skip("wg is not installed (wireguard-tools, scripts/install-system-tools.sh)")
    return found


def _wg_run(*args: str, stdin: str = "") -> str:
    return subprocess.run(
        [_wg(), *args], input=stdin, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def test_public_key_matches_the_rfc_7748_vector() -> None:
    public = wireguard_public_key(_b64(RFC7748_ALICE_PRIVATE))
    assert public == _b64(RFC7748_ALICE_PUBLIC)


def test_public_key_matches_wg_pubkey() -> None:
    assert _wg_run("pubkey", stdin=_b64(RFC7748_ALICE_PRIVATE) + "\n") == _b64(RFC7748_ALICE_PUBLIC)
    for _ in range(3):
        private = _wg_run("genkey")
        assert wireguard_public_key(private) == _wg_run("pubkey", stdin=private + "\n")
        # `wg genkey` prints clamped keys: normalising one changes nothing.
        assert private_key_from_random_bytes(private) == private


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_private_keys_are_clamped_per_rfc_7748(raw: bytes) -> None:
    key = private_key_from_random_bytes(base64.b64encode(raw).decode())
    clamped = base64.b64decode(key)
    assert clamped[0] & 0b111 == 0
    assert clamped[31] & 0x80 == 0 and clamped[31] & 0x40 == 0x40
    assert clamped[1:31] == raw[1:31]
    assert private_key_from_random_bytes(key) == key
    # X25519 clamps internally too, so the public key is that of the raw bytes.
    assert wireguard_public_key(key) == wireguard_public_key(base64.b64encode(raw).decode())


@pytest.mark.parametrize("value", ["", "not base64!", base64.b64encode(b"x" * 31).decode()])
def test_malformed_key_material_is_rejected_without_echoing_it(value: str) -> None:
    with pytest.raises(ValueError) as rejected:
        private_key_from_random_bytes(value)
    if value:
        assert value not in str(rejected.value)
    assert not is_wireguard_key(value)


def _sections(conf: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in conf.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        current.setdefault(key, []).append(value)
    return sections


def test_edge_and_home_configs_point_at_each_other() -> None:
    edge_private = _wg_run("genkey")
    home_private = _wg_run("genkey")
    edge = _sections(
        render_wireguard_edge_conf(
            address=IPv4Interface("10.99.0.1/30"),
            listen_port=51820,
            home_public_key=wireguard_public_key(home_private),
            home_address=IPv4Address("10.99.0.2"),
            home_networks=(IPv4Network("192.168.1.0/24"),),
            private_key_file="/etc/wireguard/wg0.key",
        )
    )
    home = _sections(
        render_wireguard_home_conf(
            address=IPv4Interface("10.99.0.2/30"),
            edge_public_key=wireguard_public_key(edge_private),
            edge_endpoint_host="203.0.113.10",
            edge_endpoint_port=51820,
            edge_address=IPv4Address("10.99.0.1"),
            private_key=home_private,
            forward_to_interface="eth0",
        )
    )
    assert "PrivateKey" not in edge["Interface"]
    assert edge["Interface"]["PostUp"] == ["wg set %i private-key /etc/wireguard/wg0.key"]
    assert edge["Peer"]["PublicKey"] == [_wg_run("pubkey", stdin=home_private + "\n")]
    assert edge["Peer"]["AllowedIPs"] == ["10.99.0.2/32, 192.168.1.0/24"]
    assert home["Interface"]["PrivateKey"] == [home_private]
    assert home["Peer"]["PublicKey"] == [_wg_run("pubkey", stdin=edge_private + "\n")]
    assert home["Peer"]["Endpoint"] == ["203.0.113.10:51820"]
    assert home["Peer"]["AllowedIPs"] == ["10.99.0.1/32"]
    assert home["Peer"]["PersistentKeepalive"] == ["25"]
    assert any("MASQUERADE" in rule for rule in home["Interface"]["PostUp"])
    assert any("-D POSTROUTING" in rule for rule in home["Interface"]["PostDown"])


def test_home_config_takes_a_placeholder_for_the_offline_render() -> None:
    edge_public = wireguard_public_key(_b64(RFC7748_ALICE_PRIVATE))
    conf = render_wireguard_home_conf(
        address=IPv4Interface("10.99.0.2/30"),
        edge_public_key=edge_public,
        edge_endpoint_host="edge.example.com",
        edge_endpoint_port=51820,
        edge_address=IPv4Address("10.99.0.1"),
        private_key="[secret]",
    )
    assert "PrivateKey = [secret]" in conf
    with pytest.raises(ValueError) as rejected:
        render_wireguard_home_conf(
            address=IPv4Interface("10.99.0.2/30"),
            edge_public_key=edge_public,
            edge_endpoint_host="edge.example.com",
            edge_endpoint_port=51820,
            edge_address=IPv4Address("10.99.0.1"),
            private_key="almost-a-key\nPostUp = curl evil",
        )
    assert "evil" not in str(rejected.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"home_public_key": "nope"}, "home_public_key"),
        ({"home_address": IPv4Address("10.99.0.1")}, "home_address"),
        ({"home_address": IPv4Address("10.98.0.2")}, "home_address"),
        ({"home_networks": (IPv4Network("10.99.0.2/32"),)}, "allowed_ips"),
        ({"private_key": "[secret]", "private_key_file": "/x"}, "exactly one"),
    ],
)
def test_edge_config_validation(kwargs: dict[str, object], field: str) -> None:
    values: dict[str, object] = {
        "address": IPv4Interface("10.99.0.1/30"),
        "listen_port": 51820,
        "home_public_key": wireguard_public_key(_b64(RFC7748_ALICE_PRIVATE)),
        "home_address": IPv4Address("10.99.0.2"),
        "private_key_file": "/etc/wireguard/wg0.key",
    }
    values.update(kwargs)
    with pytest.raises(ValueError, match=field):
        render_wireguard_edge_conf(**values)  # type: ignore[arg-type]
