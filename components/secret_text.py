"""What a credential looks like as text, wherever it turns up: in a config value an error
would echo (`components/config`), or in a ConfigMap or a plain env value the policy pack
checks (`policy/rules.py`); and which key names hold one (a Helm values overlay may not).
Heuristics by design: they catch the known key formats, long opaque tokens and the usual
key names, and leave public identifiers (hex digests, names, references to Secrets) alone.
"""

from __future__ import annotations

import re
from typing import Any

SECRET_LOOKING = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"  # PEM private keys
    r"|\b(sk|pk|rk)-[A-Za-z0-9_-]{16,}"  # OpenAI, Anthropic, Stripe-style API keys
    r"|\b(hf|gh[pousr]|glpat|xox[abpr])[_-][A-Za-z0-9_-]{16,}"  # Hugging Face, GitHub, ...
    r"|\bA(KIA|SIA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWTs
    r"|(client-certificate|client-key|token)-data"  # kubeconfig fields
)
"""Text that looks like a credential wherever it appears."""

OPAQUE_TOKEN = re.compile(r"[A-Za-z0-9+/=_]{24,}")
"""A long run of key material (base64 and alphanumerics); no dots or hyphens, so host names,
file names and model names are not one."""

PUBLIC_PEM = re.compile(
    r"-----BEGIN (CERTIFICATE|PUBLIC KEY|X509 CRL)-----.*?-----END \1-----", re.DOTALL
)
"""Certificates and public keys: long base64, and public."""


def looks_like_secret(value: Any) -> bool:
    """True for text that looks like a credential: a known key format, or a long opaque
    token mixing upper case, lower case and digits outside certificates (digests, names
    and addresses are public, and none of them mixes all three)."""
    text = PUBLIC_PEM.sub("", value if isinstance(value, str) else str(value))
    if SECRET_LOOKING.search(text):
        return True
    return any(
        re.search(r"[a-z]", token) and re.search(r"[A-Z]", token) and re.search(r"[0-9]", token)
        for token in OPAQUE_TOKEN.findall(text)
    )


HOLDER_WORDS = frozenset(
    {"password", "passwd", "passphrase", "secret", "token", "credential", "credentials"}
    | {"apikey", "privatekey", "secretkey", "accesskey"}
)
HOLDER_PAIRS = frozenset({("api", "key"), ("private", "key"), ("secret", "key"), ("access", "key")})
REFERENCE_WORDS = frozenset({"name", "ref", "key", "file", "path", "enabled", "create"})
"""Last words of keys that name where a secret is kept (`secretName`, `passwordKey`,
`tokenFile`) or switch one on (`token.enabled`), rather than hold it."""


def key_words(key: str) -> list[str]:
    """The lower-case words of a snake_case, kebab-case or camelCase key."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|[_\-.]+", " ", key)
    return spaced.lower().split()


def holds_secret(key: str) -> bool:
    """Whether a key's name says its value is a credential (`adminPassword`, `apiKey`,
    `client_secret`), not a reference to one (`existingSecret`, `secretName`)."""
    words = key_words(key)
    if not words or words[0] == "existing":
        return False
    return words[-1] in HOLDER_WORDS or tuple(words[-2:]) in HOLDER_PAIRS


def secret_value_path(path: list[str]) -> bool:
    """Whether a value at `path` (keys from the root) would be a credential: its own key
    holds one, or a parent's does and the key is not a reference (`auth.password.value`,
    not `auth.password.existingSecret` nor `token.enabled`)."""
    leaf = path[-1]
    words = key_words(leaf)
    if words and words[0] == "existing":
        return False
    if holds_secret(leaf):
        return True
    if words and words[-1] in REFERENCE_WORDS:
        return False
    return any(holds_secret(key) for key in path[:-1])
