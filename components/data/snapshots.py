"""Prod snapshots of the vector DB to S3: the script and the CronJob's pod spec (pure).

Qdrant snapshots are per collection and per node (in a distributed deployment each node
snapshots only the shards it holds), so the job walks every node of the StatefulSet
through the headless Service, and on each node every collection: create a snapshot,
download it, upload it to `s3://<bucket>/qdrant/<UTC time>/<node>/<collection>.snapshot`
with curl's built-in SigV4 signing, then delete it on the node so snapshots never fill
its disk. One pinned image (curl) does it all. Credentials, by the stack's
`aws.backup_credentials.mode`: with `web_identity` the job trades its projected
service-account token for one-hour credentials of its role before each upload (STS
`AssumeRoleWithWebIdentity` is a plain HTTPS call that needs no signature, and curl sends
the session token as `x-amz-security-token`); with `static_keys` it signs with the key
from its Secret, mounted as files like the Qdrant API key. A single S3 PUT takes up to 5 GB, which
is far above what a homelab collection snapshot weighs; larger ones need multipart
uploads (not done here). Restore: download the files and `PUT
/collections/<name>/snapshots/recover` on each node (docs/data-layer.md).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.cloud.policies import STS_AUDIENCE
from components.naming import bucket_name
from components.pod_security import NON_ROOT_UID, restricted_pod_security
from components.s3_bucket import writer_policy

from .qdrant import HEADLESS_SERVICE, HTTP_PORT, RELEASE

SCRIPT_KEY = "snapshot.sh"
S3_PREFIX = "qdrant"
"""Key prefix of every snapshot in the bucket (the lifecycle rule and the policy use it)."""
CREDENTIALS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
SECRETS_DIR = "/var/run/secrets/snapshots"
QDRANT_KEY_FILE = "qdrant-api-key"
ACCESS_KEY_ID_FILE, SECRET_ACCESS_KEY_FILE = CREDENTIALS_KEYS
WORK_DIR = "/work"
RUN_AS = NON_ROOT_UID
"""Not the image's curl_user (100): curl needs no user of its own, /work is an emptyDir."""
SERVICE_ACCOUNT = "qdrant-snapshots"
TOKEN_DIR = "/var/run/secrets/aws"  # noqa: S105 (a path)
TOKEN_PATH = f"{TOKEN_DIR}/token"
TOKEN_SECONDS = 3600


def snapshot_script() -> str:
    """POSIX sh run by the CronJob: settings from the environment, keys from the files of
    `SECRETS_DIR` (see the pod spec). Keys reach curl on its standard input as config lines
    (`--config -`), never through its arguments or the environment (none of them holds a
    `"` or a `\\`: an alphanumeric API key, AWS key and session-token characters)."""
    return f"""#!/bin/sh
# Snapshot every Qdrant collection on every node and upload the files to S3.
set -eu
: "${{QDRANT_NODES:?}}" "${{QDRANT_NAMESPACE:?}}" "${{AWS_REGION:?}}" "${{S3_BUCKET:?}}"
: "${{SECRETS_DIR:?}}" "${{WORK_DIR:?}}"
required={QDRANT_KEY_FILE}
if [ -n "${{AWS_ROLE_ARN:-}}" ]; then
  : "${{AWS_WEB_IDENTITY_TOKEN_FILE:?}}"
else
  required="$required {ACCESS_KEY_ID_FILE} {SECRET_ACCESS_KEY_FILE}"
fi
for file in $required; do
  [ -s "$SECRETS_DIR/$file" ] || {{ echo "missing secret file $SECRETS_DIR/$file" >&2; exit 1; }}
done
stamp=$(date -u +%Y%m%dT%H%M%SZ)
work=$WORK_DIR
s3="https://${{S3_BUCKET}}.s3.${{AWS_REGION}}.amazonaws.com"

api() {{
  printf 'header = "api-key: %s"\\n' "$(cat "$SECRETS_DIR/{QDRANT_KEY_FILE}")" \\
    | curl --config - --fail --silent --show-error --retry 3 --max-time 3600 "$@"
}}

# xml_field NAME: the text of element NAME in $sts (an STS response).
xml_field() {{
  printf '%s' "$sts" | tr -d '\\n' | grep -o "<$1>[^<]*</$1>" | sed 's/<[^>]*>//g' || true
}}

# credentials: key, secret and session token for the next upload: fresh one-hour
# credentials of the job's role from its service-account token, or the static key.
credentials() {{
  if [ -z "${{AWS_ROLE_ARN:-}}" ]; then
    key=$(cat "$SECRETS_DIR/{ACCESS_KEY_ID_FILE}")
    secret=$(cat "$SECRETS_DIR/{SECRET_ACCESS_KEY_FILE}")
    token=""
    return
  fi
  sts=$(curl --fail --silent --show-error --retry 3 --max-time 60 \\
    --data-urlencode "Action=AssumeRoleWithWebIdentity" \\
    --data-urlencode "Version=2011-06-15" \\
    --data-urlencode "RoleArn=${{AWS_ROLE_ARN}}" \\
    --data-urlencode "RoleSessionName=qdrant-snapshots" \\
    --data-urlencode "DurationSeconds={TOKEN_SECONDS}" \\
    --data-urlencode "WebIdentityToken@${{AWS_WEB_IDENTITY_TOKEN_FILE}}" \\
    "https://sts.${{AWS_REGION}}.amazonaws.com/")
  key=$(xml_field AccessKeyId)
  secret=$(xml_field SecretAccessKey)
  token=$(xml_field SessionToken)
  if [ -z "$key" ] || [ -z "$secret" ] || [ -z "$token" ]; then
    echo "STS returned no credentials" >&2
    exit 1
  fi
}}

# upload FILE URL: one signed PUT with the current credentials.
upload() {{
  credentials
  {{
    printf 'user = "%s:%s"\\n' "$key" "$secret"
    [ -z "$token" ] || printf 'header = "x-amz-security-token: %s"\\n' "$token"
  }} | curl --config - --fail --silent --show-error --retry 3 --max-time 3600 \\
    --aws-sigv4 "aws:amz:${{AWS_REGION}}:s3" \\
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$1" "$2"
}}

node=0
while [ "$node" -lt "$QDRANT_NODES" ]; do
  base="http://{RELEASE}-${{node}}.{HEADLESS_SERVICE}.${{QDRANT_NAMESPACE}}.svc.cluster.local:{HTTP_PORT}"
  # Each answer is kept first: a refused call then stops the job (set -e), where a
  # pipeline would take the exit status of its last command only.
  listing=$(api "$base/collections")
  collections=$(printf '%s\\n' "$listing" | grep -o '"name":"[^"]*"' | cut -d'"' -f4)
  for collection in $collections; do
    created=$(api -X POST "$base/collections/$collection/snapshots?wait=true")
    snapshot=$(printf '%s\\n' "$created" | grep -o '"name":"[^"]*"' | head -n 1 | cut -d'"' -f4)
    [ -n "$snapshot" ] || {{ echo "no snapshot name for $collection on node $node" >&2; exit 1; }}
    api -o "$work/$snapshot" "$base/collections/$collection/snapshots/$snapshot"
    upload "$work/$snapshot" "$s3/{S3_PREFIX}/$stamp/node-$node/$collection.snapshot"
    rm -f "$work/$snapshot"
    api -X DELETE "$base/collections/$collection/snapshots/$snapshot" >/dev/null
    echo "uploaded $collection from node $node"
  done
  node=$((node + 1))
done
"""


def cronjob_pod_spec(
    *,
    replicas: int,
    namespace: str,
    region: str,
    api_key_secret: str,
    bucket: pulumi.Input[str],
    script_configmap: str,
    role_arn: pulumi.Input[str] | None = None,
    credentials_secret: str | None = None,
) -> k8s.core.v1.PodSpecArgsDict:
    """Pod template spec of the snapshot CronJob (restricted Pod Security level).

    With `role_arn` (web identity) the pod gets its service account's token for STS;
    otherwise `credentials_secret` holds the static key.
    """
    if (role_arn is None) == (credentials_secret is None):
        raise ValueError("snapshots: exactly one of role_arn and credentials_secret")

    env: list[k8s.core.v1.EnvVarArgsDict] = [
        {"name": "S3_BUCKET", "value": bucket},
        {"name": "AWS_REGION", "value": region},
        {"name": "QDRANT_NODES", "value": str(replicas)},
        {"name": "QDRANT_NAMESPACE", "value": namespace},
        {"name": "SECRETS_DIR", "value": SECRETS_DIR},
        {"name": "WORK_DIR", "value": WORK_DIR},
    ]
    # Keys are files (mode 0440, this pod's group), never environment variables.
    secret_files: list[k8s.core.v1.VolumeProjectionArgsDict] = [
        {"secret": {"name": api_key_secret, "items": [{"key": "api-key", "path": QDRANT_KEY_FILE}]}}
    ]
    if credentials_secret is not None:
        items: list[k8s.core.v1.KeyToPathArgsDict] = [
            {"key": key, "path": key} for key in CREDENTIALS_KEYS
        ]
        secret_files.append({"secret": {"name": credentials_secret, "items": items}})
    mounts: list[k8s.core.v1.VolumeMountArgsDict] = [
        {"name": "scripts", "mount_path": "/scripts", "read_only": True},
        {"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True},
        {"name": "work", "mount_path": WORK_DIR},
    ]
    volumes: list[k8s.core.v1.VolumeArgsDict] = [
        {"name": "scripts", "config_map": {"name": script_configmap}},
        {"name": "secrets", "projected": {"sources": secret_files, "default_mode": 0o440}},
        {"name": "work", "empty_dir": {}},
    ]
    if role_arn is not None:
        env += [
            {"name": "AWS_ROLE_ARN", "value": role_arn},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": TOKEN_PATH},
        ]
        mounts.append({"name": "aws-token", "mount_path": TOKEN_DIR, "read_only": True})
        volumes.append(
            {
                "name": "aws-token",
                "projected": {
                    "sources": [
                        {
                            "service_account_token": {
                                "audience": STS_AUDIENCE,
                                "expiration_seconds": TOKEN_SECONDS,
                                "path": "token",
                            }
                        }
                    ]
                },
            }
        )
    return {
        "restart_policy": "Never",
        "service_account_name": SERVICE_ACCOUNT,
        # Only the STS token is mounted, never the API token.
        "automount_service_account_token": False,
        # The key files are this group's (mode 0440).
        "security_context": restricted_pod_security(RUN_AS),
        "containers": [
            {
                "name": "snapshot",
                "image": versions.CURL.ref,
                "command": ["/bin/sh", f"/scripts/{SCRIPT_KEY}"],
                "env": env,
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"cpu": "1", "memory": "256Mi"},
                },
                "security_context": {
                    "allow_privilege_escalation": False,
                    "read_only_root_filesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volume_mounts": mounts,
            }
        ],
        "volumes": volumes,
    }


def snapshot_bucket_name(*, stack: str, account_id: str, region: str) -> str:
    """`llm-platform-<stack>-qdrant-snapshots-<account>-<region>` (global S3 names)."""
    return bucket_name(
        stack=stack, purpose="qdrant-snapshots", account_id=account_id, region=region
    )


def bucket_policy_document(bucket_arn: str) -> str:
    """The snapshot writer's policy: list its bucket, write and read under `qdrant/` only
    (no delete: snapshots expire by the lifecycle rule)."""
    return writer_policy(
        bucket_arn,
        prefix=S3_PREFIX,
        actions=["s3:PutObject", "s3:GetObject"],
        sid="WriteSnapshots",
        list_sid="ListTheSnapshotBucket",
    )
