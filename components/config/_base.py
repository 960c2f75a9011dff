"""Shared building blocks of the config models: the frozen base model and config errors.

Every model is frozen and forbids unknown keys, so a typo in a stack file is an error
instead of a silently ignored setting. Cross-field rules raise `ConfigProblems`, which
carries one `Problem` per bad field with a path relative to the model that raised it;
`format_validation_error` turns pydantic's errors into the one-line-per-problem form
the program prints (`config error: <dotted.path>: <what is wrong> (got <value>)`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, ValidationError

from components.secret_text import key_words, looks_like_secret

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"

DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN)]
"""A Kubernetes object name / DNS-1123 label: lower-case alphanumerics and '-', max 63."""

SecretConfigKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
"""The name of a secret config key (`pulumi config set --secret <key> ...`)."""

K8sQuantity = Annotated[
    str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
]
"""A Kubernetes resource quantity such as `500m`, `2`, `4Gi`."""


class FrozenModel(BaseModel):
    """Base of every config model: immutable, unknown keys rejected, defaults validated."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_default=True,
        str_strip_whitespace=True,
        use_enum_values=False,
    )


@dataclass(frozen=True)
class Problem:
    """One bad field: where it is (relative path), what is wrong and the value found."""

    path: tuple[str | int, ...]
    message: str
    value: Any = None


class ConfigProblems(ValueError):  # noqa: N818 (pydantic requires a ValueError)
    """Raised by model validators for cross-field rules; may carry several problems."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{_dotted(p.path)}: {p.message}" for p in self.problems))


class ConfigError(Exception):
    """The stack config is invalid; `lines` holds one `config error: ...` line per problem."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = tuple(lines)
        super().__init__("\n".join(self.lines))


def raise_if_problems(problems: Iterable[Problem]) -> None:
    """Raise `ConfigProblems` when the iterable yields anything."""
    collected = list(problems)
    if collected:
        raise ConfigProblems(collected)


def _dotted(path: Iterable[str | int]) -> str:
    return ".".join(str(part) for part in path)


SECRET_FIELD = re.compile(
    r"(^|_)(keys?|tokens?|secrets?|password|passphrase|credentials?|private|kubeconfig)($|_)",
    re.IGNORECASE,
)
"""Field names whose values are never shown in an error: they hold a secret, or name where
one is kept, and a user may have pasted the secret itself there."""


def _secret_path(path: Sequence[str | int]) -> bool:
    # camelCase keys (Helm values: `adminPassword`) read as their snake_case words.
    return any(
        isinstance(part, str)
        and (SECRET_FIELD.search(part) or SECRET_FIELD.search("_".join(key_words(part))))
        for part in path
    )


def shown_value(path: Sequence[str | int], value: Any) -> str:
    """How an error shows a value: never a secret's, nor one that looks like a secret."""
    if value is not None and (_secret_path(path) or looks_like_secret(value)):
        return "a value that is or looks like a secret, not shown"
    if value is None:
        return "nothing"
    if isinstance(value, Enum):
        value = value.value
    text = repr(value) if isinstance(value, str) else str(value)
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= 120 else text[:117] + "..."


def problem_line(path: Iterable[str | int], message: str, value: Any) -> str:
    """Format one problem the way the program prints it (secret values never shown)."""
    parts = tuple(path)
    return f"config error: {_dotted(parts)}: {message} (got {shown_value(parts, value)})"


def format_validation_error(error: ValidationError, prefix: Sequence[str] = ()) -> list[str]:
    """One line per problem, expanding cross-field `ConfigProblems` into their own paths."""
    lines: list[str] = []
    for item in error.errors(include_url=False):
        loc = tuple(prefix) + tuple(item["loc"])
        original = (item.get("ctx") or {}).get("error")
        if isinstance(original, ConfigProblems):
            for problem in original.problems:
                lines.append(problem_line(loc + problem.path, problem.message, problem.value))
            continue
        message = str(item["msg"])
        message = message.removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key; check the spelling against the config reference"
        elif item["type"] == "missing":
            message = "required key is missing"
        lines.append(problem_line(loc, message, item.get("input")))
    return lines


def _address_text(value: Any) -> Any:
    """Addresses come from YAML as text; a number (or bool) would be read as an integer IP."""
    if isinstance(value, bool | int | float):
        raise ValueError("must be written as text, e.g. '192.168.1.10' or '10.0.0.0/16'")
    return value


Ipv4Address = Annotated[IPv4Address, BeforeValidator(_address_text)]
"""An IPv4 address written as text."""


def _network_text(value: Any) -> Any:
    """A network written with host bits set (`192.168.50.1/24`) is refused with the network
    it most likely means, rather than pydantic's bare "not a valid IPv4 network"."""
    text = _address_text(value)
    if isinstance(text, str):
        try:
            IPv4Network(text)
        except ValueError:
            try:
                meant = IPv4Network(text, strict=False)
            except ValueError:
                return text
            raise ValueError(
                f"has host bits set: a network is written with its first address, "
                f"did you mean '{meant}'?"
            ) from None
    return text


Ipv4Network = Annotated[IPv4Network, BeforeValidator(_network_text)]
"""An IPv4 network in CIDR notation written as text."""
