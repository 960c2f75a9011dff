"""Scripts that bootstrap k3s nodes over SSH: pure functions, typed settings in, bash out.

`K3sCluster` runs these through pulumi-command and exposes them as artifacts under
`files/cluster/`, so a reviewer reads exactly what runs on each host:

* `preflight_script`: checks a host before anything is changed on any host (supported
  Ubuntu/Debian release, CPU architecture as configured, password-less sudo, the tools
  the install needs, on GPU nodes a working NVIDIA driver with enough GPUs). All
  problems are reported at once, each naming the node.
* `install_script`: idempotent install or upgrade of one node. It writes the kubelet
  sysctls that `protect-kernel-defaults` requires, the k3s `config.yaml` (labels,
  taints, hardening flags), on servers the Pod Security admission config and the audit
  policy, on GPU nodes the pinned NVIDIA container toolkit; it installs k3s only when
  the installed version differs and restarts it only when a file it owns changed. A
  re-run on an unchanged host changes nothing and says so.
* `uninstall_script`: runs the uninstall script k3s's installer left on the host.
* `label_nodes_script`: for `existing` mode, the `kubectl` commands that give existing
  nodes the labels and taints the platform relies on.

k3s comes from its own installer, fetched from the k3s repository at the pinned release
tag (not the moving `get.k3s.io`), with `INSTALL_K3S_VERSION` set to the same tag; the
installer verifies the downloaded binary against that release's `sha256sum-<arch>.txt`.
Secrets never appear in a script: a joining node reads the cluster token on stdin and
writes it to a root-only file that `config.yaml` points to (`token-file`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, Literal
from urllib.parse import quote

import yaml

K3S_CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
TOKEN_FILE = "/etc/rancher/k3s/cluster-token"  # noqa: S105 (a path, not a secret)
SERVER_TOKEN_PATH = "/var/lib/rancher/k3s/server/token"  # noqa: S105 (a path)
KUBECONFIG_PATH = "/etc/rancher/k3s/k3s.yaml"
PSA_CONFIG_PATH = "/var/lib/rancher/k3s/server/psa.yaml"
AUDIT_POLICY_PATH = "/var/lib/rancher/k3s/server/audit.yaml"
AUDIT_LOG_DIR = "/var/lib/rancher/k3s/server/logs"
SYSCTL_PATH = "/etc/sysctl.d/90-kubelet.conf"
CONTAINERD_CONFIG = "/var/lib/rancher/k3s/agent/etc/containerd/config.toml"
API_PORT = 6443
JWKS_PATH = "/openid/v1/jwks"
"""Where the API server serves its service-account key set (and the issuer publishes it)."""

SUPPORTED_OS: tuple[str, ...] = (
    "ubuntu:22.04",
    "ubuntu:24.04",
    "ubuntu:26.04",
    "debian:12",
    "debian:13",
)
"""`ID:VERSION_ID` of `/etc/os-release` the scripts are written for (apt, systemd)."""

KUBELET_SYSCTLS: tuple[tuple[str, int], ...] = (
    ("vm.panic_on_oom", 0),
    ("vm.overcommit_memory", 1),
    ("kernel.panic", 10),
    ("kernel.panic_on_oops", 1),
    ("kernel.keys.root_maxkeys", 1000000),
    ("kernel.keys.root_maxbytes", 25000000),
)
"""What the kubelet checks at start under `protect-kernel-defaults` (it exits otherwise)."""

NVIDIA_TOOLKIT_PACKAGES: tuple[str, ...] = (
    "nvidia-container-toolkit",
    "nvidia-container-toolkit-base",
    "libnvidia-container-tools",
    "libnvidia-container1",
)
"""Packages of the NVIDIA container toolkit; NVIDIA's apt repository versions them together."""

NVIDIA_APT_KEY_URL = "https://nvidia.github.io/libnvidia-container/gpgkey"
NVIDIA_APT_KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
NVIDIA_APT_LIST = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"


@dataclass(frozen=True, kw_only=True)
class NodeSettings:
    """Everything the scripts of one node depend on (plain values from config)."""

    node_name: str
    address: IPv4Address
    role: Literal["server", "agent"]
    arch: str
    """`amd64` or `arm64` (Kubernetes' names)."""
    k3s_version: str
    cluster_init: bool = False
    """True only on the first server: it starts the embedded etcd cluster."""
    join_address: IPv4Address | None = None
    """The first server's address, which every other node joins (None on the first server)."""
    api_endpoint: IPv4Address | None = None
    """Extra name in the API server certificate (servers), the kubeconfig's address."""
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[str] = ()
    """`key=value:Effect` (or `key:Effect`) strings."""
    gpu_count: int = 0
    nvidia_toolkit_version: str | None = None
    """Pinned apt version of the NVIDIA container toolkit; required when `gpu_count > 0`."""
    service_account_issuer: str | None = None
    """Servers: the public issuer URL new service-account tokens are signed as (k3s's own
    issuer stays accepted, so tokens already issued keep working). None by default."""

    def __post_init__(self) -> None:
        if self.arch not in ("amd64", "arm64"):
            raise ValueError(f"{self.node_name}: unknown architecture {self.arch!r}")
        if self.cluster_init == (self.join_address is not None):
            raise ValueError(f"{self.node_name}: exactly one of cluster_init and join_address")
        if self.cluster_init and self.role != "server":
            raise ValueError(f"{self.node_name}: only a server can start the cluster")
        if self.gpu_count and not self.nvidia_toolkit_version:
            raise ValueError(f"{self.node_name}: a GPU node needs the toolkit version")
        issuer = self.service_account_issuer
        if issuer is not None and not issuer.startswith("https://"):
            raise ValueError(f"{self.node_name}: the issuer must be an https URL ({issuer!r})")

    @property
    def service(self) -> str:
        """The systemd unit k3s's installer creates for this role."""
        return "k3s" if self.role == "server" else "k3s-agent"

    @property
    def joins(self) -> bool:
        """Whether the node joins an existing cluster (and so needs the token)."""
        return self.join_address is not None


def installer_url(k3s_version: str) -> str:
    """k3s's install.sh at the release tag itself, so the script is as pinned as the binary."""
    return f"https://raw.githubusercontent.com/k3s-io/k3s/{quote(k3s_version, safe='')}/install.sh"


def pod_security_admission_config() -> dict[str, Any]:
    """Cluster-wide Pod Security defaults: enforce `baseline`, audit and warn `restricted`.

    Namespaces created by the platform carry their own labels (stricter where they can);
    `kube-system` is exempt because node agents (the NVIDIA device plugin, ServiceLB)
    need host access.
    """
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [
            {
                "name": "PodSecurity",
                "configuration": {
                    "apiVersion": "pod-security.admission.config.k8s.io/v1",
                    "kind": "PodSecurityConfiguration",
                    "defaults": {
                        "enforce": "baseline",
                        "enforce-version": "latest",
                        "audit": "restricted",
                        "audit-version": "latest",
                        "warn": "restricted",
                        "warn-version": "latest",
                    },
                    "exemptions": {
                        "usernames": [],
                        "runtimeClasses": [],
                        "namespaces": ["kube-system"],
                    },
                },
            }
        ],
    }


def audit_policy() -> dict[str, Any]:
    """API audit policy: who did what, never the content of Secrets or tokens."""
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            # Health probes and events are high-volume and say nothing about who changed what.
            {
                "level": "None",
                "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version"],
            },
            {"level": "None", "resources": [{"group": "", "resources": ["events"]}]},
            {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"]},
            # Bodies of these carry credentials: metadata only.
            {
                "level": "Metadata",
                "resources": [
                    {"group": "", "resources": ["secrets", "configmaps", "serviceaccounts/token"]},
                    {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
                ],
            },
            # Who changed access rights, with the request body.
            {
                "level": "Request",
                "verbs": ["create", "update", "patch", "delete"],
                "resources": [{"group": "rbac.authorization.k8s.io"}],
            },
            {"level": "Metadata"},
        ],
    }


def k3s_config(settings: NodeSettings) -> dict[str, Any]:
    """The node's `/etc/rancher/k3s/config.yaml` (keys are k3s's flag names)."""
    config: dict[str, Any] = {"node-name": settings.node_name, "node-ip": str(settings.address)}
    if settings.cluster_init:
        config["cluster-init"] = True
    else:
        config["server"] = f"https://{settings.join_address}:{API_PORT}"
        config["token-file"] = TOKEN_FILE
    if settings.role == "server":
        sans = [str(settings.address)]
        if settings.api_endpoint is not None and settings.api_endpoint != settings.address:
            sans.append(str(settings.api_endpoint))
        config.update(
            {
                "tls-san": sans,
                # The ingress area installs its own pinned Traefik.
                "disable": ["traefik"],
                "write-kubeconfig-mode": "0600",
                "secrets-encryption": True,
                "kube-apiserver-arg": [
                    f"admission-control-config-file={PSA_CONFIG_PATH}",
                    f"audit-policy-file={AUDIT_POLICY_PATH}",
                    f"audit-log-path={AUDIT_LOG_DIR}/audit.log",
                    "audit-log-maxage=30",
                    "audit-log-maxbackup=10",
                    "audit-log-maxsize=100",
                    *issuer_args(settings.service_account_issuer),
                ],
            }
        )
    config["protect-kernel-defaults"] = True
    config["kubelet-arg"] = ["streaming-connection-idle-timeout=5m"]
    if settings.labels:
        config["node-label"] = [f"{k}={v}" for k, v in sorted(settings.labels.items())]
    if settings.taints:
        config["node-taint"] = sorted(settings.taints)
    return config


def issuer_args(issuer: str | None) -> list[str]:
    """API server flags that sign service-account tokens as `issuer` and point its discovery
    document at the key set published next to it. The trailing `-` makes k3s put the issuer
    before its own default (the first issuer signs, every listed one is accepted)."""
    if issuer is None:
        return []
    return [
        f"service-account-issuer-={issuer}",
        f"service-account-jwks-uri={issuer}{JWKS_PATH}",
    ]


def _yaml(document: Mapping[str, Any]) -> str:
    dumped: str = yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False)
    return dumped


def shell_quote(value: str) -> str:
    """A bash single-quoted word."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def heredoc(path: str, mode: str, body: str, tag: str) -> str:
    if any(line == tag for line in body.splitlines()):
        raise ValueError(f"heredoc body for {path} contains its delimiter {tag}")
    return f"put_file {shell_quote(path)} {mode} <<'{tag}'\n{body.rstrip(chr(10))}\n{tag}\n"


def put_file_function(who: str) -> str:
    """Bash `put_file PATH MODE`: writes stdin to PATH only when the content differs, says
    so as `<who>: wrote PATH` and sets `changed=1`, so a script restarts only what
    changed. `who` is a shell word expanded at run time (e.g. `k3s on ${NODE}`)."""
    return f"""\
changed=0

# put_file PATH MODE: write stdin to PATH only when the content differs, and note it.
put_file() {{
  local path="$1" mode="$2" tmp
  tmp="$(mktemp)"
  cat >"${{tmp}}"
  if [ -f "${{path}}" ] && cmp -s "${{tmp}}" "${{path}}"; then
    rm -f "${{tmp}}"
    return 0
  fi
  install -D -m "${{mode}}" "${{tmp}}" "${{path}}"
  rm -f "${{tmp}}"
  echo "{who}: wrote ${{path}}"
  changed=1
}}
"""


_COMMON = """\
set -euo pipefail
umask 022

fail() {
  echo "k3s on ${NODE}: $*" >&2
  exit 1
}

""" + put_file_function("k3s on ${NODE}")


def _header(settings: NodeSettings, what: str) -> str:
    return (
        "#!/usr/bin/env bash\n"
        f"# {what} of k3s {settings.role} {settings.node_name} ({settings.address}).\n"
        "# Generated by llm-platform (components/cluster/scripts.py); do not edit by hand.\n"
        f"NODE={shell_quote(settings.node_name)}\n"
    )


def preflight_script(settings: NodeSettings) -> str:
    """Checks a host before the cluster is touched; exits 1 listing every problem."""
    supported = " ".join(SUPPORTED_OS)
    gpu_check = ""
    if settings.gpu_count:
        gpu_check = f"""
if ! command -v nvidia-smi >/dev/null 2>&1; then
  problem "the NVIDIA driver is not installed (nvidia-smi not found); install the driver first"
else
  gpus="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
  if [ "${{gpus}}" -lt {settings.gpu_count} ]; then
    problem "config says {settings.gpu_count} GPU(s), nvidia-smi lists ${{gpus}}"
  fi
fi
for tool in gpg apt-get dpkg-query; do
  command -v "${{tool}}" >/dev/null 2>&1 || problem "${{tool}} is missing (needed for the NVIDIA toolkit)"
done
"""
    return (
        _header(settings, "Preflight")
        + f"""set -uo pipefail
WANT_ARCH={shell_quote(settings.arch)}
SUPPORTED={shell_quote(supported)}
problems=0

problem() {{
  echo "preflight ${{NODE}}: $*" >&2
  problems=$((problems + 1))
}}

if [ -r /etc/os-release ]; then
  # shellcheck source=/dev/null
  os="$(. /etc/os-release && echo "${{ID:-unknown}}:${{VERSION_ID:-unknown}}")"
else
  os="unknown:unknown"
fi
case " ${{SUPPORTED}} " in
  *" ${{os}} "*) ;;
  *) problem "unsupported OS ${{os}}; supported: ${{SUPPORTED}}" ;;
esac

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
esac
if [ "${{arch}}" != "${{WANT_ARCH}}" ]; then
  problem "the host is ${{arch}} but config says ${{WANT_ARCH}}; fix cluster.nodes.${{NODE}}.arch"
fi

sudo -n true 2>/dev/null || problem "$(id -un) cannot run sudo without a password"
[ -d /run/systemd/system ] || problem "systemd is not running (k3s's installer needs it)"
for tool in curl sha256sum cmp install mktemp; do
  command -v "${{tool}}" >/dev/null 2>&1 || problem "${{tool}} is missing"
done
{gpu_check}
if [ "${{problems}}" -gt 0 ]; then
  echo "preflight ${{NODE}}: ${{problems}} problem(s); nothing was changed on any host" >&2
  exit 1
fi
echo "preflight ${{NODE}}: ok (${{os}}, ${{arch}})"
"""
    )


def _token_block() -> str:
    return f"""
# The cluster token arrives on stdin (a Pulumi secret); it never appears in this script.
token="$(cat)"
[ -n "${{token}}" ] || fail "no cluster token on stdin"
put_file {shell_quote(TOKEN_FILE)} 0600 <<<"${{token}}"
unset token
"""


def _toolkit_block(settings: NodeSettings) -> str:
    version = settings.nvidia_toolkit_version or ""
    pinned = " ".join(f"{p}={version}" for p in NVIDIA_TOOLKIT_PACKAGES)
    packages = " ".join(NVIDIA_TOOLKIT_PACKAGES)
    # apt expands $(ARCH) in a sources line itself; the shell must not.
    source = (
        f"deb [signed-by={NVIDIA_APT_KEYRING}] "
        "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /"
    )
    return f"""
# NVIDIA container toolkit, before k3s starts: k3s looks for nvidia-container-runtime
# when it starts and then adds the `nvidia` runtime to its containerd config.
TOOLKIT_VERSION={shell_quote(version)}
# shellcheck disable=SC2016
toolkit_have="$(dpkg-query -W -f '${{Version}}' nvidia-container-toolkit 2>/dev/null || true)"
if [ "${{toolkit_have}}" != "${{TOOLKIT_VERSION}}" ]; then
  install -d -m 0755 /usr/share/keyrings
  curl -fsSL --retry 3 {shell_quote(NVIDIA_APT_KEY_URL)} | gpg --batch --yes --dearmor -o {shell_quote(NVIDIA_APT_KEYRING)}
  # shellcheck disable=SC2016
  put_file {shell_quote(NVIDIA_APT_LIST)} 0644 <<<{shell_quote(source)}
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --allow-downgrades \\
    --allow-change-held-packages {pinned}
  apt-mark hold {packages} >/dev/null
  echo "k3s on ${{NODE}}: NVIDIA container toolkit ${{TOOLKIT_VERSION}} installed"
  changed=1
fi
command -v nvidia-container-runtime >/dev/null 2>&1 \\
  || fail "nvidia-container-runtime not found after installing the toolkit"
"""


def install_script(settings: NodeSettings) -> str:
    """Idempotent install/upgrade of k3s on one node (run as root; token on stdin if joining)."""
    sysctls = "".join(f"{key}={value}\n" for key, value in KUBELET_SYSCTLS)
    parts = [_header(settings, "Install"), _COMMON]
    parts.append(
        f"""K3S_VERSION={shell_quote(settings.k3s_version)}
INSTALLER_URL={shell_quote(installer_url(settings.k3s_version))}
SERVICE={shell_quote(settings.service)}
ROLE={shell_quote(settings.role)}
"""
    )
    if settings.joins:
        parts.append(_token_block())
    parts.append("\n# Kernel settings the kubelet insists on under protect-kernel-defaults.\n")
    parts.append(heredoc(SYSCTL_PATH, "0644", sysctls, "SYSCTL"))
    parts.append(f"sysctl -q -p {shell_quote(SYSCTL_PATH)}\n\n")
    parts.append(heredoc(K3S_CONFIG_PATH, "0600", _yaml(k3s_config(settings)), "K3S_CONFIG"))
    if settings.role == "server":
        parts.append(f"install -d -m 0700 {shell_quote(AUDIT_LOG_DIR)}\n")
        parts.append(
            heredoc(PSA_CONFIG_PATH, "0600", _yaml(pod_security_admission_config()), "PSA")
        )
        parts.append(heredoc(AUDIT_POLICY_PATH, "0600", _yaml(audit_policy()), "AUDIT"))
    if settings.gpu_count:
        parts.append(_toolkit_block(settings))
    if settings.joins:
        parts.append(
            f"""
# Joining needs the first server's API: wait for it (bounded), else say what is unreachable.
for _ in $(seq 1 60); do
  if timeout 3 bash -c ': </dev/tcp/{settings.join_address}/{API_PORT}' 2>/dev/null; then
    break
  fi
  sleep 5
done
timeout 3 bash -c ': </dev/tcp/{settings.join_address}/{API_PORT}' 2>/dev/null \\
  || fail "cannot reach the first server at {settings.join_address}:{API_PORT}"
"""
        )
    parts.append(
        """
have="$(k3s --version 2>/dev/null | sed -n 's/^k3s version \\([^ ]*\\).*/\\1/p' || true)"
if [ "${have}" != "${K3S_VERSION}" ]; then
  echo "k3s on ${NODE}: installing ${K3S_VERSION} (found '${have:-none}')"
  installer="$(mktemp)"
  curl -fsSL --retry 3 -o "${installer}" "${INSTALLER_URL}"
  # A clean environment: the installer copies any K3S_* variable into the unit's env file.
  env -i PATH="${PATH}" INSTALL_K3S_VERSION="${K3S_VERSION}" INSTALL_K3S_EXEC="${ROLE}" \\
    sh "${installer}"
  rm -f "${installer}"
elif [ "${changed}" -eq 1 ] || ! systemctl is-active --quiet "${SERVICE}"; then
  echo "k3s on ${NODE}: configuration changed; restarting ${SERVICE}"
  systemctl restart "${SERVICE}"
else
  echo "k3s on ${NODE}: ${K3S_VERSION} already installed and configured; nothing to do"
fi
systemctl is-active --quiet "${SERVICE}" || fail "${SERVICE} is not running"
"""
    )
    if settings.role == "server":
        parts.append(
            """
for _ in $(seq 1 60); do
  if k3s kubectl get --raw /readyz >/dev/null 2>&1; then
    break
  fi
  sleep 5
done
k3s kubectl get --raw /readyz >/dev/null 2>&1 || fail "the API server did not become ready"
"""
        )
    if settings.gpu_count:
        parts.append(
            f"""
for _ in $(seq 1 30); do
  if grep -q nvidia {shell_quote(CONTAINERD_CONFIG)} 2>/dev/null; then
    break
  fi
  sleep 2
done
grep -q nvidia {shell_quote(CONTAINERD_CONFIG)} 2>/dev/null \\
  || fail "k3s did not register the nvidia runtime in containerd ({CONTAINERD_CONFIG})"
"""
        )
    parts.append('echo "k3s on ${NODE}: ready"\n')
    return "".join(parts)


def uninstall_script(settings: NodeSettings) -> str:
    """Remove k3s from a node with the uninstall script its installer created."""
    tool = "k3s-uninstall.sh" if settings.role == "server" else "k3s-agent-uninstall.sh"
    return (
        _header(settings, "Uninstall")
        + f"""set -euo pipefail
if [ -x /usr/local/bin/{tool} ]; then
  /usr/local/bin/{tool}
  echo "k3s on ${{NODE}}: uninstalled"
else
  echo "k3s on ${{NODE}}: not installed; nothing to do"
fi
rm -f {shell_quote(SYSCTL_PATH)}
"""
    )


def label_nodes_script(nodes: Mapping[str, tuple[Mapping[str, str], Sequence[str]]]) -> str:
    """`kubectl` commands giving existing nodes their configured labels and taints."""
    lines = [
        "#!/usr/bin/env bash",
        "# Labels and taints the platform expects on the nodes of an existing cluster.",
        "# Generated by llm-platform (components/cluster/scripts.py); run with a kubeconfig",
        "# of the cluster (KUBECONFIG). Idempotent: --overwrite replaces a changed value.",
        "set -euo pipefail",
    ]
    for name, (labels, taints) in sorted(nodes.items()):
        if labels:
            pairs = " ".join(shell_quote(f"{k}={v}") for k, v in sorted(labels.items()))
            lines.append(f"kubectl label node {shell_quote(name)} --overwrite {pairs}")
        for taint in sorted(taints):
            lines.append(f"kubectl taint node {shell_quote(name)} --overwrite {shell_quote(taint)}")
    return "\n".join(lines) + "\n"


def command_line(script: str, *, sudo: bool) -> str:
    """The SSH command that runs a script (as root with `sudo`), passing stdin through."""
    runner = "sudo -n bash -c" if sudo else "bash -c"
    return f"{runner} {shell_quote(script)}"


def rewrite_kubeconfig(text: str, api_endpoint: IPv4Address) -> str:
    """k3s's kubeconfig with its loopback server address replaced by the API endpoint."""
    loopback = f"server: https://127.0.0.1:{API_PORT}"
    if loopback not in text:
        raise ValueError("the fetched kubeconfig has no loopback server address to rewrite")
    return text.replace(loopback, f"server: https://{api_endpoint}:{API_PORT}")
