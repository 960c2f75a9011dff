"""Prod snapshots of the vector DB to S3: the script and the CronJob's pod spec (pure).

Qdrant snapshots are per collection and per node (in a distributed deployment each node
snapshots only the shards it holds), so the job walks every node of the StatefulSet
through the headless Service, and on each node every collection: create a snapshot,
download it, upload it to `s3://<bucket>/qdrant/<UTC time>/<node>/<collection>.snapshot`
with curl's built-in SigV4 signing, then delete it on the node so snapshots never fill
its disk. One pinned image (curl) does it all. A single S3 PUT takes up to 5 GB, which
is far above what a homelab collection snapshot weighs; larger ones need multipart
uploads (not done here). Restore: download the files and `PUT
/collections/<name>/snapshots/recover` on each node (docs/data-layer.md).
"""

from __future__ import annotations

import json

import pulumi_kubernetes as k8s

from components import versions

from .qdrant import HEADLESS_SERVICE, HTTP_PORT, RELEASE

SCRIPT_KEY = "snapshot.sh"
S3_PREFIX = "qdrant"
"""Key prefix of every snapshot in the bucket (the lifecycle rule and the policy use it)."""
CREDENTIALS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
SECRETS_DIR = "/var/run/secrets/snapshots"
QDRANT_KEY_FILE = "qdrant-api-key"
BUCKET_FILE = "S3_BUCKET"
ACCESS_KEY_ID_FILE, SECRET_ACCESS_KEY_FILE = CREDENTIALS_KEYS
RUN_AS = 10001
"""Not the image's curl_user (100): curl needs no user of its own, /work is an emptyDir."""


def snapshot_script() -> str:
    """POSIX sh run by the CronJob: settings from the environment, keys from the files of
    `SECRETS_DIR` (see the pod spec), handed to curl on its standard input as config lines
    (the keys hold no `"` or `\\`: an alphanumeric API key and AWS key characters)."""
    return f"""#!/bin/sh
# Snapshot every Qdrant collection on every node and upload the files to S3.
# The keys are read from mounted files and reach curl through its standard input
# (--config -), never through its arguments or the environment.
set -eu
: "${{QDRANT_NODES:?}}" "${{QDRANT_NAMESPACE:?}}" "${{AWS_REGION:?}}" "${{SECRETS_DIR:?}}" "${{WORK_DIR:?}}"
for file in {QDRANT_KEY_FILE} {BUCKET_FILE} {ACCESS_KEY_ID_FILE} {SECRET_ACCESS_KEY_FILE}; do
  [ -s "$SECRETS_DIR/$file" ] || {{ echo "missing secret file $SECRETS_DIR/$file" >&2; exit 1; }}
done
bucket=$(cat "$SECRETS_DIR/{BUCKET_FILE}")
stamp=$(date -u +%Y%m%dT%H%M%SZ)
work=$WORK_DIR
s3="https://${{bucket}}.s3.${{AWS_REGION}}.amazonaws.com"

api() {{
  printf 'header = "api-key: %s"\\n' "$(cat "$SECRETS_DIR/{QDRANT_KEY_FILE}")" \\
    | curl --config - --fail --silent --show-error --retry 3 --max-time 3600 "$@"
}}

upload() {{
  printf 'user = "%s:%s"\\n' "$(cat "$SECRETS_DIR/{ACCESS_KEY_ID_FILE}")" \\
    "$(cat "$SECRETS_DIR/{SECRET_ACCESS_KEY_FILE}")" \\
    | curl --config - --fail --silent --show-error --retry 3 --max-time 3600 \\
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
    credentials_secret: str,
    script_configmap: str,
) -> k8s.core.v1.PodSpecArgsDict:
    """Pod template spec of the snapshot CronJob (restricted Pod Security level)."""
    env: list[k8s.core.v1.EnvVarArgsDict] = [
        {"name": "AWS_REGION", "value": region},
        {"name": "QDRANT_NODES", "value": str(replicas)},
        {"name": "QDRANT_NAMESPACE", "value": namespace},
        {"name": "SECRETS_DIR", "value": SECRETS_DIR},
        {"name": "WORK_DIR", "value": "/work"},
    ]
    secret_files: list[k8s.core.v1.VolumeProjectionArgsDict] = [
        {
            "secret": {
                "name": api_key_secret,
                "items": [{"key": "api-key", "path": QDRANT_KEY_FILE}],
            }
        },
        {
            "secret": {
                "name": credentials_secret,
                "items": [
                    {"key": "S3_BUCKET", "path": BUCKET_FILE},
                    *({"key": key, "path": key} for key in CREDENTIALS_KEYS),
                ],
            }
        },
    ]
    return {
        "restart_policy": "Never",
        "automount_service_account_token": False,
        "security_context": {
            "run_as_non_root": True,
            "run_as_user": RUN_AS,
            "run_as_group": RUN_AS,
            # The key files are this group's (mode 0440).
            "fs_group": RUN_AS,
            "seccomp_profile": {"type": "RuntimeDefault"},
        },
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
                "volume_mounts": [
                    {"name": "scripts", "mount_path": "/scripts", "read_only": True},
                    {"name": "secrets", "mount_path": SECRETS_DIR, "read_only": True},
                    {"name": "work", "mount_path": "/work"},
                ],
            }
        ],
        "volumes": [
            {"name": "scripts", "config_map": {"name": script_configmap}},
            {"name": "secrets", "projected": {"sources": secret_files, "default_mode": 0o440}},
            {"name": "work", "empty_dir": {}},
        ],
    }


def snapshot_bucket_name(*, environment: str, account_id: str, region: str) -> str:
    """`llm-platform-<env>-qdrant-snapshots-<account>-<region>` (global S3 names)."""
    return f"llm-platform-{environment}-qdrant-snapshots-{account_id}-{region}"


def bucket_policy_document(bucket_arn: str) -> str:
    """IAM policy of the snapshot user: write and list its one bucket, nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ListTheSnapshotBucket",
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket"],
                    "Resource": [bucket_arn],
                },
                {
                    "Sid": "WriteSnapshots",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:GetObject"],
                    "Resource": [f"{bucket_arn}/{S3_PREFIX}/*"],
                },
            ],
        },
        sort_keys=True,
    )
