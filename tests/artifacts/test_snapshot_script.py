"""The Qdrant snapshot job's script (components/data/snapshots.py) run by sh with the real
curl against a fake Qdrant and a fake S3 bucket on loopback.

The cluster names the script uses are pointed at the fakes by a `.curlrc` in `CURL_HOME`
(`connect-to`, the test CA): the script and its URLs are exactly those deployed. Its keys
come from files, as mounted in the pod (a static key here; the web-identity exchange is
tested with a fake curl in tests/unit/test_data_layer.py); a refused key or a missing file
stops the job.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.data import snapshots
from components.data.qdrant import HEADLESS_SERVICE, HTTP_PORT, RELEASE
from tests.fakes.snapshot_targets import FakeQdrant, FakeS3
from tests.fakes.upstream import TestPki

pytestmark = pytest.mark.live

API_KEY = "QdrantKey0123456789abcdefQdrantKey0123456789ab"
ACCESS_KEY_ID = "AKIAFAKEFAKEFAKE0123"
SECRET_ACCESS_KEY = "fake/Secret+Access0Key0123456789abcdefghij"
BUCKET = "llm-platform-prod-qdrant-snapshots-123456789012-eu-west-1"
REGION = "eu-west-1"
NAMESPACE = "data"
NODES = 2
COLLECTIONS = ("docs", "notes")


@dataclass
class Job:
    qdrant: FakeQdrant
    s3: FakeS3
    root: Path

    def run(self, secrets: dict[str, str]) -> subprocess.CompletedProcess[str]:
        secrets_dir = self.root / "secrets"
        shutil.rmtree(secrets_dir, ignore_errors=True)
        secrets_dir.mkdir()
        for name, value in secrets.items():
            (secrets_dir / name).write_text(value)
        script = self.root / snapshots.SCRIPT_KEY
        script.write_text(snapshots.snapshot_script())
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "CURL_HOME": str(self.root / "curl-home"),
            "QDRANT_NODES": str(NODES),
            "QDRANT_NAMESPACE": NAMESPACE,
            "AWS_REGION": REGION,
            "S3_BUCKET": BUCKET,
            "SECRETS_DIR": str(secrets_dir),
            "WORK_DIR": str(self.root / "work"),
        }
        return subprocess.run(
            ["sh", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
        )


GOOD_SECRETS = {
    snapshots.QDRANT_KEY_FILE: API_KEY,
    snapshots.ACCESS_KEY_ID_FILE: ACCESS_KEY_ID,
    snapshots.SECRET_ACCESS_KEY_FILE: SECRET_ACCESS_KEY,
}


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Job]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (run scripts/install-system-tools.sh)")
    pki = TestPki()
    s3_host = f"{BUCKET}.s3.{REGION}.amazonaws.com"
    # The first name is the subject CN (64 characters at most); the bucket host is a SAN.
    cert, key = pki.write_server_files(tmp_path, "s3", ["s3.test", s3_host])
    (tmp_path / "ca.pem").write_bytes(pki.ca_pem)
    (tmp_path / "work").mkdir()
    with FakeQdrant(API_KEY, COLLECTIONS) as qdrant, FakeS3(cert, key) as s3:
        lines = [
            f'connect-to = "{RELEASE}-{node}.{HEADLESS_SERVICE}.{NAMESPACE}.svc.cluster.local:'
            f'{HTTP_PORT}:127.0.0.1:{qdrant.port}"'
            for node in range(NODES)
        ]
        lines += [f'connect-to = "{s3_host}:443:127.0.0.1:{s3.port}"']
        lines += [f'cacert = "{tmp_path / "ca.pem"}"']
        (tmp_path / "curl-home").mkdir()
        (tmp_path / "curl-home" / ".curlrc").write_text("\n".join(lines) + "\n")
        yield Job(qdrant, s3, tmp_path)


def test_every_collection_of_every_node_is_uploaded_signed_and_removed(job: Job) -> None:
    done = job.run(GOOD_SECRETS)
    assert done.returncode == 0, done.stderr
    uploads = {path.split("/", 3)[3]: (auth, body) for path, auth, body in job.s3.state.puts}
    expected = {
        f"node-{node}/{collection}.snapshot": f"bytes of {collection}-{RELEASE}-{node}.snapshot"
        for node in range(NODES)
        for collection in COLLECTIONS
    }
    assert {name: body.decode() for name, (_, body) in uploads.items()} == expected
    assert {path.split("/")[1] for path, _, _ in job.s3.state.puts} == {"qdrant"}
    for auth, _ in uploads.values():
        assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")
        assert SECRET_ACCESS_KEY not in auth
    assert sorted(job.qdrant.state.deleted) == sorted(
        f"{c}-{RELEASE}-{n}.snapshot" for n in range(NODES) for c in COLLECTIONS
    )
    assert list((job.root / "work").iterdir()) == []
    for secret in (API_KEY, SECRET_ACCESS_KEY):
        assert secret not in done.stdout + done.stderr


def test_a_refused_api_key_stops_the_job_before_any_upload(job: Job) -> None:
    done = job.run({**GOOD_SECRETS, snapshots.QDRANT_KEY_FILE: "WrongKey0123456789abcdef"})
    assert done.returncode != 0
    assert "401" in done.stderr
    assert job.s3.state.puts == []


def test_a_missing_key_file_stops_the_job_naming_it(job: Job) -> None:
    secrets = {k: v for k, v in GOOD_SECRETS.items() if k != snapshots.SECRET_ACCESS_KEY_FILE}
    done = job.run(secrets)
    assert done.returncode != 0
    assert f"missing secret file {job.root / 'secrets'}/AWS_SECRET_ACCESS_KEY" in done.stderr
    assert job.qdrant.state.seen == [] and job.s3.state.puts == []
