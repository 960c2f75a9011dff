"""Config of the AWS account side that is not the edge: backup credentials and logs."""

from __future__ import annotations

import json
from datetime import date
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ._base import FrozenModel, Ipv4Network, Problem, raise_if_problems


class StaticKeysConfig(FrozenModel):
    """Long-lived access keys for the backup writers: an opt-in, bounded in place and time."""

    source_cidrs: tuple[Ipv4Network, ...] = Field(
        min_length=1,
        description="The only source addresses the keys work from (the home connection's "
        "public address, a /32 or a small range); anything else is denied by the policy.",
    )
    rotate_by: date = Field(
        description="The keys stop working at 00:00 UTC on this day (a policy condition). "
        "Moving the date issues new keys and deletes the old ones (docs/llm-gateway-ops.md)."
    )

    @field_validator("source_cidrs")
    @classmethod
    def _no_wide_ranges(cls, cidrs: tuple[Ipv4Network, ...]) -> tuple[Ipv4Network, ...]:
        wide = [str(c) for c in cidrs if c.prefixlen < 16]
        if wide:
            raise ValueError(f"at most a /16 per range, not the open internet (got {wide})")
        return cidrs


class BackupCredentialsConfig(FrozenModel):
    """How the in-cluster writers (Postgres backups, vector DB snapshots) reach S3."""

    mode: Literal["web_identity", "static_keys"] = Field(
        default="web_identity",
        description="`web_identity` (default): each writer's Kubernetes service account "
        "token is exchanged for short-lived credentials of its own role "
        "(`AssumeRoleWithWebIdentity`); no key is stored anywhere. `static_keys`: an IAM "
        "user and access key per writer, usable only from `static_keys.source_cidrs` and "
        "until `static_keys.rotate_by`.",
    )
    static_keys: StaticKeysConfig | None = Field(
        default=None, description="Required with `mode: static_keys`, refused otherwise."
    )
    service_account_jwks: str | None = Field(
        default=None,
        description="`existing` clusters with `web_identity`: the cluster's service-account "
        "signing keys as `kubectl get --raw /openid/v1/jwks` prints them (public keys). "
        "A bootstrapped cluster's are read from its first server.",
    )

    @field_validator("service_account_jwks")
    @classmethod
    def _is_a_key_set(cls, text: str | None) -> str | None:
        if text is None:
            return None
        try:
            keys = json.loads(text)["keys"]
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError("must be a JSON Web Key Set: an object with `keys`") from error
        if not isinstance(keys, list) or not keys:
            raise ValueError("must hold at least one key")
        for key in keys:
            if not isinstance(key, dict) or not {"kty", "kid", "n", "e"} <= set(key):
                raise ValueError("each key needs kty, kid, n and e (an RSA public key)")
        return text

    @model_validator(mode="after")
    def _keys_only_when_asked(self) -> BackupCredentialsConfig:
        if (self.mode == "static_keys") != (self.static_keys is not None):
            raise_if_problems(
                [
                    Problem(
                        ("static_keys",),
                        "required with mode static_keys"
                        if self.mode == "static_keys"
                        else "only with mode static_keys (the default mode stores no key)",
                        None if self.static_keys is None else "set",
                    )
                ]
            )
        return self


class LogsConfig(FrozenModel):
    """Where the AWS side's own logs go: one log bucket per stack."""

    retention_days: int = Field(
        default=365,
        ge=7,
        le=3650,
        description="S3 server access logs of the buckets and the edge VPC's flow logs are "
        "kept this long, then expire.",
    )
