"""WireGuard key helpers: a private key from 32 random bytes, and its public key.

The program generates the tunnel's private keys as random bytes held in Pulumi state
(secret Outputs) and derives the public keys here, so no `wg` binary runs at deploy time.
Keys are the standard base64 of 32 bytes, exactly as `wg genkey` / `wg pubkey` print them.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

KEY_BYTES = 32


def _decode_key(value: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"{what} must decode to {KEY_BYTES} bytes, not {len(raw)}")
    return raw


def private_key_from_random_bytes(b64_32_bytes: str) -> str:
    """A WireGuard private key from 32 random bytes (base64), clamped per RFC 7748 section 5.

    Clamping clears the three low bits of the first byte and the top bit of the last, and
    sets the second-highest bit; `wg genkey` prints keys in this form (and WireGuard clamps
    any key it is given, so this only normalises). The error never echoes the input.
    """
    raw = bytearray(_decode_key(b64_32_bytes, "private key material"))
    raw[0] &= 0xF8
    raw[31] &= 0x7F
    raw[31] |= 0x40
    return base64.b64encode(bytes(raw)).decode("ascii")


def wireguard_public_key(private_key_b64: str) -> str:
    """The X25519 public key (base64) of a WireGuard private key (base64), like `wg pubkey`."""
    raw = _decode_key(private_key_b64, "private key")
    public = X25519PrivateKey.from_private_bytes(raw).public_key()
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def is_wireguard_key(value: str) -> bool:
    """Whether a string is a well-formed WireGuard key (base64 of 32 bytes)."""
    try:
        _decode_key(value, "key")
    except ValueError:
        return False
    return True
