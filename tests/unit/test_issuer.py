"""The cluster's service-account issuer as AWS sees it: published, registered, trusted
by exactly the writers' service accounts."""

from __future__ import annotations

import json

from components.cloud.issuer import DISCOVERY_KEY, JWKS_KEY, discovery_document, issuer_url
from tests.support import committed_stack_run
from tools.mock_engine import ACCOUNT

PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"


def test_the_discovery_document_names_the_issuer_and_its_keys() -> None:
    url = issuer_url(stack="prod", account_id="123456789012", region="eu-west-1")
    assert url == "https://llm-platform-prod-oidc-123456789012-eu-west-1.s3.eu-west-1.amazonaws.com"
    document = json.loads(discovery_document(url))
    assert document["issuer"] == url
    assert document["jwks_uri"] == f"{url}/{JWKS_KEY}"
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]


def test_prod_publishes_the_issuer_the_servers_sign_as_and_registers_it() -> None:
    run = committed_stack_run("prod")
    url = issuer_url(stack="prod", account_id=ACCOUNT, region="eu-west-1")
    for server in ("rack-1", "rack-2", "rack-3"):
        assert f"service-account-issuer-={url}\n" in run.artifacts[f"cluster/{server}-install.sh"]
    (provider,) = run.of_type(PROVIDER)
    assert provider.inputs["url"] == url
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    objects = {o.inputs["key"]: o for o in run.of_type(OBJECT)}
    assert set(objects) == {DISCOVERY_KEY, JWKS_KEY}
    assert json.loads(objects[DISCOVERY_KEY].inputs["content"])["issuer"] == url
    bucket = url.removeprefix("https://").split(".", 1)[0]
    assert {o.inputs["bucket"] for o in objects.values()} == {bucket}
    # IAM reads the documents when it registers the provider: they and the read policy first
    names = {r.urn: r.name for r in run.resources}
    needs = {names[u] for u in provider.depends_on}
    assert {"llm-issuer-discovery", "llm-issuer-keys", "llm-issuer-bucket-policy"} <= needs
    keys = objects[JWKS_KEY]
    assert (
        "llm-cluster-service-account-keys"
        in {names[u] for u in keys.depends_on}
        | {names[u] for deps in [keys.depends_on] for u in deps}
        or keys.inputs["content"] == ""
    )


def test_each_writer_trusts_only_its_service_account_through_this_issuer() -> None:
    run = committed_stack_run("prod")
    (provider,) = run.of_type(PROVIDER)
    host = provider.inputs["url"].removeprefix("https://")
    provider_arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"
    subjects = {}
    for role in run.of_type("aws:iam/role:Role"):
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        if statement["Action"] != "sts:AssumeRoleWithWebIdentity":
            continue
        assert statement["Principal"] == {"Federated": provider_arn}
        conditions = statement["Condition"]["StringEquals"]
        assert conditions[f"{host}:aud"] == "sts.amazonaws.com"
        subjects[role.name] = conditions[f"{host}:sub"]
    assert subjects == {
        "llm-gateway-db-backup-role": "system:serviceaccount:llm-gateway:litellm-db",
        "llm-data-snapshot-role": "system:serviceaccount:data:qdrant-snapshots",
    }


def test_dev_has_no_writers_and_so_no_issuer() -> None:
    run = committed_stack_run("dev")
    assert run.of_type(PROVIDER) == [] and run.of_type(OBJECT) == []
    assert not any("service-account-issuer" in text for text in run.artifacts.values())
