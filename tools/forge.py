"""The REST API that GitHub and Gitea share for issues and their comments (stdlib only).

`GITHUB_API_URL` and `GITHUB_TOKEN` come from the runner; the workflows' report tools
(`tools.pr_comment`, `tools.drift`) talk to it through `RestApi` and nothing else.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from typing import Any

TIMEOUT_SECONDS = 30
MAX_PAGES = 20
PAGE_SIZE = 100


class RestApi:
    """Authenticated JSON calls to one forge's API."""

    def __init__(self, *, api: str, token: str) -> None:
        if not api.startswith(("https://", "http://")):
            raise SystemExit(f"GITHUB_API_URL must be an http(s) URL, got {api!r}")
        self.api = api.rstrip("/")
        self.token = token

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """One call; the answer parsed as JSON (None when empty)."""
        request = urllib.request.Request(  # noqa: S310 (scheme checked in __init__)
            f"{self.api}{path}",
            method=method,
            data=json.dumps(payload).encode() if payload is not None else None,
            headers={
                "Authorization": f"token {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def pages(self, path: str) -> list[Any]:
        """Every item of a paginated listing (`path` without paging parameters), bounded."""
        items: list[Any] = []
        joiner = "&" if "?" in path else "?"
        for page in range(1, MAX_PAGES + 1):
            batch = self.request("GET", f"{path}{joiner}per_page={PAGE_SIZE}&page={page}")
            items += batch
            if len(batch) < PAGE_SIZE:
                break
        return items


def from_environment() -> RestApi | None:
    """The API the runner gives a job (`GITHUB_API_URL`, `GITHUB_TOKEN`); None, with a line
    on stderr, when the token is missing."""
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        print("GITHUB_TOKEN is not set", file=sys.stderr)
        return None
    return RestApi(api=os.environ.get("GITHUB_API_URL", "https://api.github.com"), token=token)
