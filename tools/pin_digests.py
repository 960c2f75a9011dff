"""`make pin-digests`: each image of components/versions.py pinned to its registry digest.

For every `Image(repository=..., tag=...)` in the file it asks the image's registry, over
the OCI distribution API, for the manifest the tag names (`HEAD /v2/<name>/manifests/<tag>`
accepting an image index or manifest, so the digest is the multi-platform one a node
pulls), following a registry's anonymous Bearer token challenge, and writes the digest
into the file next to the tag. A digest that disagrees with the body the registry served,
or that is no sha256, is refused. A registry that cannot be reached leaves its images
pinned by tag, one line each, and the render says which images are tag-pinned only.

Exit codes: 0 written (or nothing to change); 1 a registry answered with an error (an
unknown tag, say); nothing is written then.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ROOT / "components" / "versions.py"

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
# Registries whose API lives at another host than the name in image references.
API_HOSTS = {"docker.io": "https://registry-1.docker.io"}
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """The registry answered, but not with a usable digest."""


class Unreachable(Exception):  # noqa: N818 (a condition, not a failure of this tool)
    """No connection to the registry (offline, DNS, refused, timed out)."""


@dataclass(frozen=True)
class Pin:
    """One `Image(...)` call in the source: where it is and what it names."""

    variable: str
    repository: str
    tag: str
    digest: str | None
    start: int
    end: int
    indent: str


def find_pins(source: str) -> list[Pin]:
    """Every top-level `NAME = Image(repository="...", tag="..."[, digest="..."])`."""
    tree = ast.parse(source)
    offsets = [0]
    for line in source.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    pins = []
    for node in tree.body:
        if not (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "Image"
        ):
            continue
        call = node.value
        fields = {
            keyword.arg: keyword.value.value
            for keyword in call.keywords
            if isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str)
        }
        if set(fields) - {"repository", "tag", "digest"} or len(fields) != len(call.keywords):
            raise ValueError(f"line {node.lineno}: Image(...) with other than literal fields")
        assert call.end_lineno is not None and call.end_col_offset is not None
        pins.append(
            Pin(
                variable=node.targets[0].id,
                repository=fields["repository"],
                tag=fields["tag"],
                digest=fields.get("digest"),
                start=offsets[call.lineno - 1] + call.col_offset,
                end=offsets[call.end_lineno - 1] + call.end_col_offset,
                indent=" " * node.col_offset,
            )
        )
    return pins


def with_digests(source: str, digests: Mapping[str, str]) -> str:
    """`source` with the digest of each variable in `digests` written into its call."""
    result = source
    for pin in sorted(find_pins(source), key=lambda p: p.start, reverse=True):
        digest = digests.get(pin.variable)
        if digest is None or digest == pin.digest:
            continue
        if not _DIGEST.match(digest):
            raise RegistryError(f"{pin.variable}: {digest!r} is not a sha256 digest")
        inner = pin.indent + "    "
        call = (
            "Image(\n"
            f'{inner}repository="{pin.repository}",\n'
            f'{inner}tag="{pin.tag}",\n'
            f'{inner}digest="{digest}",\n'
            f"{pin.indent})"
        )
        result = result[: pin.start] + call + result[pin.end :]
    return result


def split_reference(repository: str) -> tuple[str, str]:
    """(registry, name) of `registry/path` (`docker.io/library/redis` -> docker.io, ...)."""
    registry, _, name = repository.partition("/")
    return registry, name


def _request(
    url: str, *, method: str, headers: Mapping[str, str], timeout: float
) -> tuple[int, Message[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=dict(headers))  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise Unreachable(str(getattr(error, "reason", error))) from error


def _token(challenge: str, *, timeout: float) -> str:
    """An anonymous token for a `Bearer realm=...,service=...,scope=...` challenge."""
    scheme, _, params = challenge.partition(" ")
    if scheme.lower() != "bearer":
        raise RegistryError(f"unsupported authentication challenge {scheme!r}")
    fields = dict(_CHALLENGE.findall(params))
    realm = fields.pop("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise RegistryError(f"token realm {realm!r} is not a URL")
    url = f"{realm}?{urllib.parse.urlencode(fields)}"
    status, _, body = _request(url, method="GET", headers={}, timeout=timeout)
    if status != 200:
        raise RegistryError(f"token endpoint answered {status}")
    document = json.loads(body)
    token = document.get("token") or document.get("access_token")
    if not isinstance(token, str) or not token:
        raise RegistryError("token endpoint returned no token")
    return token


def resolve(repository: str, tag: str, *, api_hosts: Mapping[str, str], timeout: float = 20) -> str:
    """The digest the registry serves for `repository:tag` (index or manifest)."""
    registry, name = split_reference(repository)
    base = api_hosts.get(registry, f"https://{registry}")
    url = f"{base}/v2/{name}/manifests/{urllib.parse.quote(tag, safe='')}"
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    for method in ("HEAD", "GET"):
        status, answer, body = _request(url, method=method, headers=headers, timeout=timeout)
        if status == 401 and "WWW-Authenticate" in answer:
            headers["Authorization"] = "Bearer " + _token(
                answer["WWW-Authenticate"], timeout=timeout
            )
            status, answer, body = _request(url, method=method, headers=headers, timeout=timeout)
        if status != 200:
            raise RegistryError(f"{repository}:{tag}: the registry answered {status}")
        digest = answer.get("Docker-Content-Digest")
        if method == "GET":
            served = "sha256:" + hashlib.sha256(body).hexdigest()
            if digest is not None and digest != served:
                raise RegistryError(
                    f"{repository}:{tag}: digest header {digest} is not that of the body"
                )
            digest = served
        if digest is not None:
            if not _DIGEST.match(digest):
                raise RegistryError(f"{repository}:{tag}: {digest!r} is not a sha256 digest")
            return digest
    raise AssertionError("unreachable")


def main(argv: Sequence[str] | None = None) -> int:
    """Resolve, then write the file once every reachable registry has answered."""
    parser = argparse.ArgumentParser(prog="pin_digests", description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=Path, default=VERSIONS)
    parser.add_argument(
        "--registry",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="where the API of registry NAME is (e.g. a mirror); repeatable",
    )
    parser.add_argument("--timeout", type=float, default=20)
    args = parser.parse_args(argv)
    api_hosts = dict(API_HOSTS)
    for entry in args.registry:
        name, sep, url = entry.partition("=")
        if not sep or not url.startswith(("https://", "http://")):
            parser.error(f"--registry {entry!r}: expected NAME=URL")
        api_hosts[name] = url.rstrip("/")
    source = args.versions.read_text()
    digests: dict[str, str] = {}
    unreachable: set[str] = set()
    failed = False
    for pin in find_pins(source):
        registry, _ = split_reference(pin.repository)
        ref = f"{pin.repository}:{pin.tag}"
        if registry in unreachable:
            print(f"offline: {ref} stays pinned by tag only")
            continue
        try:
            digests[pin.variable] = resolve(
                pin.repository, pin.tag, api_hosts=api_hosts, timeout=args.timeout
            )
        except Unreachable as error:
            unreachable.add(registry)
            print(f"offline: {ref} stays pinned by tag only ({registry}: {error})")
            continue
        except RegistryError as error:
            failed = True
            print(f"error: {error}", file=sys.stderr)
            continue
        change = "unchanged" if digests[pin.variable] == pin.digest else "pinned"
        print(f"{change}: {ref}@{digests[pin.variable]}")
    if failed:
        print("pin-digests: nothing written", file=sys.stderr)
        return 1
    updated = with_digests(source, digests)
    if updated != source:
        args.versions.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
