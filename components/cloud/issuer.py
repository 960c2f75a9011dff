"""ServiceAccountIssuer: AWS trusts the tokens the cluster gives its service accounts.

The backup writers get short-lived credentials by trading a projected service-account
token for them (`AssumeRoleWithWebIdentity`). STS checks a token against the issuer named
in it, fetching `<issuer>/.well-known/openid-configuration` and the keys it points to over
public HTTPS; a k3s cluster's own issuer (`https://kubernetes.default.svc.cluster.local`)
reaches nobody outside. So the issuer is published in S3: the k3s servers sign tokens as
`https://<bucket>.s3.<region>.amazonaws.com` (`issuer_url`, set by `K3sCluster`), and this
component creates, after the cluster:

* the bucket `<name>-bucket` (`public_documents_bucket`: anyone may read exactly the two
  documents, over TLS; nothing else of the bucket; access logs to the log bucket;
  protected on prod);
* the discovery document (`discovery_document`, pure) and the cluster's key set, read from
  the cluster (`K3sCluster.service_account_jwks`);
* the IAM OIDC provider for the issuer, audience `sts.amazonaws.com`. IAM validates an
  S3-hosted key set's certificate against its trusted CAs, so no thumbprint is pinned
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_create_oidc_verify-thumbprint.html).

Exposes `identity` (`WorkloadIdentity`: the provider's ARN and the issuer host), from
which each writer's role trusts exactly its own service account. Expects the explicit
`aws.Provider`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.cloud.policies import STS_AUDIENCE
from components.config import PlatformConfig
from components.naming import bucket_name
from components.s3_bucket import LogTarget, WorkloadIdentity, public_documents_bucket

DISCOVERY_KEY = ".well-known/openid-configuration"
JWKS_KEY = "openid/v1/jwks"


def issuer_bucket_name(*, stack: str, account_id: str, region: str) -> str:
    """`llm-platform-<stack>-oidc-<account>-<region>` (global S3 names)."""
    return bucket_name(stack=stack, purpose="oidc", account_id=account_id, region=region)


def issuer_url(*, stack: str, account_id: str, region: str) -> str:
    """The issuer the cluster signs its service-account tokens as: the bucket's HTTPS URL."""
    bucket = issuer_bucket_name(stack=stack, account_id=account_id, region=region)
    return f"https://{bucket}.s3.{region}.amazonaws.com"


def discovery_document(url: str) -> str:
    """The OpenID discovery document STS reads: the issuer and where its keys are
    (the fields a Kubernetes API server serves at the same path)."""
    return json.dumps(
        {
            "issuer": url,
            "jwks_uri": f"{url}/{JWKS_KEY}",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        },
        indent=2,
        sort_keys=True,
    )


@dataclass(frozen=True, kw_only=True)
class ServiceAccountIssuerArgs:
    """Inputs of the issuer."""

    config: PlatformConfig
    provider: aws.Provider
    account_id: pulumi.Input[str]
    jwks: pulumi.Input[str]
    """The cluster's service-account key set (public keys), as the API server serves it."""
    log_target: LogTarget | None = None
    """Where the bucket's access logs go; none by default."""


class ServiceAccountIssuer(pulumi.ComponentResource):
    """The cluster's token issuer, published in S3 and registered with IAM."""

    url: pulumi.Output[str]
    identity: WorkloadIdentity

    def __init__(
        self,
        name: str,
        args: ServiceAccountIssuerArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llm-platform:cloud:ServiceAccountIssuer", name, None, opts)
        config = args.config
        on_aws = pulumi.ResourceOptions(parent=self, provider=args.provider)
        account = pulumi.Output.from_input(args.account_id)
        region = config.aws.region
        self.url = account.apply(
            lambda a: issuer_url(stack=config.stack_name, account_id=a, region=region)
        )
        bucket, policy = public_documents_bucket(
            f"{name}-bucket",
            bucket_name=account.apply(
                lambda a: issuer_bucket_name(stack=config.stack_name, account_id=a, region=region)
            ),
            tags={"Name": f"{name}-bucket", "purpose": "service-account-issuer"},
            public_keys=(DISCOVERY_KEY, JWKS_KEY),
            log_target=args.log_target,
            # Deleting it breaks every writer's credentials until it is rebuilt.
            opts=pulumi.ResourceOptions.merge(
                on_aws,
                pulumi.ResourceOptions(protect=config.is_prod, retain_on_delete=config.is_prod),
            ),
        )
        documents = [
            aws.s3.BucketObjectv2(
                f"{name}-{role}",
                bucket=bucket.id,
                key=key,
                content=content,
                content_type="application/json",
                opts=on_aws,
            )
            for role, key, content in (
                ("discovery", DISCOVERY_KEY, self.url.apply(discovery_document)),
                ("keys", JWKS_KEY, args.jwks),
            )
        ]
        provider = aws.iam.OpenIdConnectProvider(
            f"{name}-provider",
            url=self.url,
            client_id_lists=[STS_AUDIENCE],
            # IAM reads the discovery document when the provider is created.
            opts=pulumi.ResourceOptions.merge(
                on_aws, pulumi.ResourceOptions(depends_on=[*documents, policy])
            ),
        )
        self.identity = WorkloadIdentity(
            provider_arn=provider.arn,
            issuer_host=self.url.apply(lambda url: url.removeprefix("https://")),
        )
        self.register_outputs({"url": self.url, "provider_arn": provider.arn})
