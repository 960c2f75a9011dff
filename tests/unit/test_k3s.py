"""K3sCluster under the recording mocks: the bootstrap command graph, secrets, modes."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pulumi
import pytest
import yaml

from components.cloud.issuer import JWKS_KEY
from components.cluster.k3s import K3sCluster, K3sClusterArgs, join_order
from components.config import PlatformConfig, parse_platform_config
from tests.support import SAMPLE_JWKS, as_existing, secret_placeholder, stack_values
from tools.mock_engine import SECRET, ProgramRun, RecordedResource, config_for_engine, run_program

COMMAND = "command:remote:Command"
SSH_KEY = secret_placeholder("ssh_private_key")
KUBECONFIG = secret_placeholder("kubeconfig")


def bootstrap_values(stack: str) -> dict[str, Any]:
    """A stack file's values switched to bootstrap mode (API on the first server)."""
    values = stack_values(stack)
    cluster = values["cluster"]
    cluster["mode"] = "bootstrap"
    first = next(n for n, node in cluster["nodes"].items() if node.get("role") == "server")
    cluster["api_endpoint"] = cluster["nodes"][first]["address"]
    return values


def run_cluster(values: dict[str, Any], *, protect: bool = False) -> ProgramRun:
    config = parse_platform_config(values)

    def program() -> dict[str, Any]:
        cluster = K3sCluster(
            "c",
            K3sClusterArgs(
                config=config.cluster,
                kubeconfig=pulumi.Output.secret(KUBECONFIG),
                ssh_private_key=pulumi.Output.secret(SSH_KEY),
                protect=protect,
            ),
        )
        pulumi.export("kubeconfig", cluster.kubeconfig)
        return {"platform": cluster}

    return run_program(
        stack=config.environment, config=config_for_engine(values), secret_keys=[], program=program
    )


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return run_cluster(bootstrap_values("prod"), protect=True)


@pytest.fixture(scope="module")
def dev() -> ProgramRun:
    return run_cluster(bootstrap_values("dev"))


def _short(urns: list[str]) -> set[str]:
    return {urn.rsplit("::", 1)[-1] for urn in urns}


def _installs(run: ProgramRun) -> dict[str, RecordedResource]:
    return {
        r.name.removeprefix("c-").removesuffix("-install"): r
        for r in run.of_type(COMMAND)
        if r.name.endswith("-install")
    }


def script_of(resource: RecordedResource, field: str = "create") -> str:
    """The script a command line runs (`[sudo -n] bash -c '<script>'`)."""
    words = shlex.split(resource.inputs[field])
    assert words[-2:-1] == ["-c"], words[:4]
    return words[-1]


def k3s_config_of(resource: RecordedResource) -> dict[str, Any]:
    """The config.yaml an install command writes, parsed back from its script."""
    match = re.search(r"<<'K3S_CONFIG'\n(.*?)\nK3S_CONFIG\n", script_of(resource), re.S)
    assert match, resource.name
    loaded: dict[str, Any] = yaml.safe_load(match.group(1))
    return loaded


def test_prod_has_three_servers_joining_one_after_another(prod: ProgramRun) -> None:
    installs = _installs(prod)
    assert set(installs) == {
        "rack-1",
        "rack-2",
        "rack-3",
        "pi-1",
        "gpu-4090",
        "gpu-3090",
        "gpu-ci",
    }
    configs = {name: k3s_config_of(r) for name, r in installs.items()}
    assert configs["rack-1"].get("cluster-init") is True
    assert "server" not in configs["rack-1"]
    for name in ("rack-2", "rack-3", "pi-1", "gpu-4090", "gpu-3090", "gpu-ci"):
        assert configs[name]["server"] == "https://192.168.10.11:6443", name
        assert "cluster-init" not in configs[name]
    assert {n for n, c in configs.items() if "tls-san" in c} == {"rack-1", "rack-2", "rack-3"}
    depends = {name: _short(r.depends_on) for name, r in installs.items()}
    assert "c-rack-1-install" in depends["rack-2"]
    assert "c-rack-2-install" in depends["rack-3"]
    assert "c-rack-3-install" not in depends["rack-2"]
    for agent in ("pi-1", "gpu-4090", "gpu-3090"):
        assert {"c-rack-1-install", "c-rack-2-install", "c-rack-3-install"} <= depends[agent]
        assert not any(f"c-{other}-install" in depends[agent] for other in ("pi-1", "gpu-4090"))


def test_dev_bootstraps_one_server_and_needs_no_token(dev: ProgramRun) -> None:
    installs = _installs(dev)
    assert list(installs) == ["rack-1"]
    assert k3s_config_of(installs["rack-1"])["cluster-init"] is True
    assert "stdin" not in installs["rack-1"].inputs
    assert not [r for r in dev.of_type(COMMAND) if r.name == "c-token"]


def test_every_install_waits_for_every_preflight(prod: ProgramRun) -> None:
    preflights = {r.name for r in prod.of_type(COMMAND) if r.name.endswith("-preflight")}
    assert len(preflights) == 7  # one per node
    for name, install in _installs(prod).items():
        assert preflights <= _short(install.depends_on), name
    for name in preflights:
        assert prod.named(name).inputs["create"].startswith("bash -c ")  # no root needed


def test_token_and_kubeconfig_are_secret_and_never_logged(prod: ProgramRun) -> None:
    token = prod.named("c-token")
    kubeconfig = prod.named("c-kubeconfig")
    assert token.inputs["create"] == "sudo -n cat /var/lib/rancher/k3s/server/token"
    assert kubeconfig.inputs["create"] == "sudo -n cat /etc/rancher/k3s/k3s.yaml"
    for reader in (token, kubeconfig):
        assert reader.inputs["logging"] == "none"
    assert _short(token.depends_on) == {"c-rack-1-install"}
    assert _short(kubeconfig.depends_on) == {f"c-{n}-install" for n in _installs(prod)}
    for name, install in _installs(prod).items():
        if name != "rack-1":
            assert install.inputs["stdin"] == SECRET, name
    (provider,) = prod.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == SECRET
    assert _short(provider.depends_on) == {"c-kubeconfig"}
    assert prod.outputs["kubeconfig"] == SECRET
    recorded = json.dumps([r.to_json() for r in prod.resources])
    assert SSH_KEY not in recorded and KUBECONFIG not in recorded


def test_joining_nodes_read_the_token_from_stdin_into_a_root_only_file(prod: ProgramRun) -> None:
    install = prod.artifacts["cluster/rack-2-install.sh"]
    assert 'token="$(cat)"' in install
    assert "put_file '/etc/rancher/k3s/cluster-token' 0600" in install
    assert (
        k3s_config_of(_installs(prod)["rack-2"])["token-file"] == "/etc/rancher/k3s/cluster-token"
    )
    assert 'token="$(cat)"' not in prod.artifacts["cluster/rack-1-install.sh"]


def test_install_reruns_in_place_and_never_uninstalls(prod: ProgramRun) -> None:
    for name, install in _installs(prod).items():
        assert install.inputs["update"] == install.inputs["create"], name
        assert "delete" not in install.inputs, name
        uninstall = prod.named(f"c-{name}-uninstall")
        assert uninstall.inputs["create"] == ":"
        tool = "k3s-uninstall.sh" if "tls-san" in k3s_config_of(install) else "k3s-agent-uninstall"
        assert tool in uninstall.inputs["delete"], name
        assert uninstall.ignore_changes == ["connection"]
        assert uninstall.protect
        assert _short(uninstall.depends_on) == {f"c-{name}-install"}


def test_uninstall_is_unprotected_unless_asked(dev: ProgramRun) -> None:
    assert not dev.named("c-rack-1-uninstall").protect


def test_labels_and_taints_reach_the_node_config(prod: ProgramRun) -> None:
    configs = {name: k3s_config_of(r) for name, r in _installs(prod).items()}
    assert "node-role/storage=true" in configs["rack-1"]["node-label"]
    gpu = configs["gpu-3090"]
    assert {
        "node-role/ai=true",
        "llm-platform.io/gpu-class=rtx-3090",
        "nvidia.com/device-plugin.config=rtx-3090",
    } <= set(gpu["node-label"])
    assert gpu["node-taint"] == ["nvidia.com/gpu=present:NoSchedule"]
    assert "node-taint" not in configs["pi-1"]
    assert "node-taint" not in configs["rack-1"]


def test_configured_taints_are_applied() -> None:
    values = bootstrap_values("prod")
    values["cluster"]["nodes"]["pi-1"]["taints"] = [{"key": "arch", "value": "arm64"}]
    values["runners"]["arm64"] = None  # runner pods do not tolerate it
    values["cluster"]["nodes"]["rack-1"]["taints"] = [
        {"key": "storage-only", "effect": "PreferNoSchedule"}
    ]
    configs = {name: k3s_config_of(r) for name, r in _installs(run_cluster(values)).items()}
    assert configs["pi-1"]["node-taint"] == ["arch=arm64:NoSchedule"]
    assert configs["rack-1"]["node-taint"] == ["storage-only:PreferNoSchedule"]


def test_single_node_dev_keeps_its_gpu_node_untainted(dev: ProgramRun) -> None:
    config = k3s_config_of(_installs(dev)["rack-1"])
    assert "node-taint" not in config
    assert "llm-platform.io/gpu-class=rtx-3060" in config["node-label"]


def test_servers_are_hardened_and_agents_protect_kernel_defaults(prod: ProgramRun) -> None:
    configs = {name: k3s_config_of(r) for name, r in _installs(prod).items()}
    for name in ("rack-1", "rack-2", "rack-3"):
        server = configs[name]
        assert server["secrets-encryption"] is True
        assert server["protect-kernel-defaults"] is True
        assert server["disable"] == ["traefik"]
        assert "192.168.10.11" in server["tls-san"]
        args = server["kube-apiserver-arg"]
        assert any(a.startswith("admission-control-config-file=") for a in args)
        assert any(a.startswith("audit-policy-file=") for a in args)
        assert any(a.startswith("audit-log-path=") for a in args)
    for name in ("pi-1", "gpu-4090"):
        assert configs[name]["protect-kernel-defaults"] is True
        assert "secrets-encryption" not in configs[name]
    # The sysctls are written before k3s is (re)started.
    script = script_of(_installs(prod)["pi-1"])
    assert script.index("90-kubelet.conf") < script.index("INSTALL_K3S_VERSION")


def test_the_pinned_version_is_installed_from_its_own_tag(prod: ProgramRun) -> None:
    config = parse_platform_config(bootstrap_values("prod"))
    version = config.cluster.k3s_version
    for name, text in prod.artifacts.items():
        if name.endswith("-install.sh"):
            assert f"K3S_VERSION='{version}'" in text
            assert "raw.githubusercontent.com/k3s-io/k3s/v1.36.2%2Bk3s1/install.sh" in text
            assert "get.k3s.io" not in text


def test_gpu_nodes_install_the_pinned_toolkit(prod: ProgramRun) -> None:
    from components.versions import NVIDIA_CONTAINER_TOOLKIT_VERSION

    gpu = prod.artifacts["cluster/gpu-4090-install.sh"]
    assert f"nvidia-container-toolkit={NVIDIA_CONTAINER_TOOLKIT_VERSION}" in gpu
    # The toolkit is in place before k3s starts, so k3s registers the runtime.
    assert gpu.index("nvidia-container-toolkit=") < gpu.index('sh "${installer}"')
    assert "nvidia-container-toolkit" not in prod.artifacts["cluster/pi-1-install.sh"]
    assert "nvidia-smi" in prod.artifacts["cluster/gpu-4090-preflight.sh"]
    assert "WANT_ARCH='arm64'" in prod.artifacts["cluster/pi-1-preflight.sh"]


def test_init_server_choice_is_respected() -> None:
    values = bootstrap_values("prod")
    values["cluster"]["init_server"] = "rack-2"
    config = parse_platform_config(values)
    assert join_order(config.cluster)[:3] == ["rack-2", "rack-1", "rack-3"]
    configs = {name: k3s_config_of(r) for name, r in _installs(run_cluster(values)).items()}
    assert configs["rack-2"]["cluster-init"] is True
    assert configs["rack-1"]["server"] == "https://192.168.10.12:6443"


def test_existing_mode_runs_nothing_on_hosts_and_renders_the_labels() -> None:
    run = run_cluster(as_existing(stack_values("prod")))
    assert run.of_type(COMMAND) == []
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == SECRET
    script = run.artifacts["cluster/label-nodes.sh"]
    assert (
        "kubectl label node 'gpu-4090' --overwrite 'llm-platform.io/gpu-class=rtx-4090'" in script
    )
    assert "kubectl taint node 'gpu-3090' --overwrite 'nvidia.com/gpu=present:NoSchedule'" in script


def test_missing_secret_for_the_mode_is_refused() -> None:
    config: PlatformConfig = parse_platform_config(bootstrap_values("dev"))

    def program() -> dict[str, Any]:
        K3sCluster("c", K3sClusterArgs(config=config.cluster))
        return {}

    with pytest.raises(Exception, match="ssh_private_key"):
        run_program(
            stack="dev",
            config=config_for_engine(bootstrap_values("dev")),
            secret_keys=[],
            program=program,
        )


def test_artifacts_are_exactly_what_runs(prod: ProgramRun) -> None:
    for name in _installs(prod):
        assert prod.artifacts[f"cluster/{name}-install.sh"] == script_of(
            prod.named(f"c-{name}-install")
        )
        assert prod.artifacts[f"cluster/{name}-preflight.sh"] == script_of(
            prod.named(f"c-{name}-preflight")
        )
        assert prod.artifacts[f"cluster/{name}-uninstall.sh"] == script_of(
            prod.named(f"c-{name}-uninstall"), "delete"
        )


ISSUER = "https://issuer-bucket.s3.eu-west-1.amazonaws.com"


def _run_with_issuer(values: dict[str, Any], **args: Any) -> ProgramRun:
    config = parse_platform_config(values)

    def program() -> dict[str, Any]:
        cluster = K3sCluster(
            "c",
            K3sClusterArgs(
                config=config.cluster,
                kubeconfig=pulumi.Output.secret(KUBECONFIG),
                ssh_private_key=pulumi.Output.secret(SSH_KEY),
                service_account_issuer=pulumi.Output.from_input(ISSUER),
                **args,
            ),
        )
        assert cluster.service_account_jwks is not None
        pulumi.export("jwks", cluster.service_account_jwks)
        return {"platform": cluster}

    return run_program(
        stack=config.environment, config=config_for_engine(values), secret_keys=[], program=program
    )


def test_servers_sign_tokens_as_the_public_issuer_and_keep_accepting_their_own() -> None:
    run = _run_with_issuer(bootstrap_values("prod"))
    for name, install in _installs(run).items():
        args = k3s_config_of(install).get("kube-apiserver-arg", [])
        if name.startswith("rack-"):
            # `-=` puts it before k3s's own issuer: the first signs, every one verifies
            assert f"service-account-issuer-={ISSUER}" in args, name
            assert f"service-account-jwks-uri={ISSUER}/{JWKS_KEY}" in args, name
        else:
            assert not any("service-account" in a for a in args), name
    assert f"service-account-issuer-={ISSUER}" in run.artifacts["cluster/rack-2-install.sh"]
    keys = run.named("c-service-account-keys")
    assert keys.inputs["create"] == f"sudo -n k3s kubectl get --raw /{JWKS_KEY}"
    assert {"c-rack-1-install", "c-gpu-3090-install"} <= _short(keys.depends_on)


def test_without_an_issuer_the_servers_keep_k3s_defaults(prod: ProgramRun) -> None:
    for install in _installs(prod).values():
        assert not any(
            "service-account" in a for a in k3s_config_of(install).get("kube-apiserver-arg", [])
        )
    assert not [r for r in prod.of_type(COMMAND) if r.name.endswith("service-account-keys")]


def test_an_existing_cluster_with_an_issuer_publishes_the_configured_keys() -> None:
    run = _run_with_issuer(as_existing(stack_values("prod")), service_account_jwks=SAMPLE_JWKS)
    assert run.outputs["jwks"] == SAMPLE_JWKS
    assert run.of_type(COMMAND) == []
    with pytest.raises(ValueError, match="needs its jwks"):
        _run_with_issuer(as_existing(stack_values("prod")))


def test_the_provider_has_the_clusters_identity_and_the_kubeconfig_its_triggers(
    prod: ProgramRun,
) -> None:
    (provider,) = prod.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["clusterIdentifier"] == "llm-platform"
    assert prod.named("c-kubeconfig").inputs["triggers"] == [
        "k3s v1.36.2+k3s1",
        "servers rack-1=192.168.10.11,rack-2=192.168.10.12,rack-3=192.168.10.13",
        "rotated never",
    ]
    values = bootstrap_values("prod")
    values["cluster"].update(name="homelab", kubeconfig_rotated="2026-09-01")
    run = run_cluster(values)
    (renamed,) = run.of_type("pulumi:providers:kubernetes")
    assert renamed.inputs["clusterIdentifier"] == "homelab"
    assert run.named("c-kubeconfig").inputs["triggers"][-1] == "rotated 2026-09-01"
    # The token is read once: only the kubeconfig expires.
    assert "triggers" not in prod.named("c-token").inputs


def test_the_home_tunnel_is_set_up_over_the_clusters_ssh_after_that_nodes_install() -> None:
    from tests.support import run_stack

    values = stack_values("prod")
    values["cluster"]["nodes"]["rack-1"]["ssh_host_key"] = (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHhVcFkA9Pxpd4A3gM3nLtQeTfQ0Bv6R3uQ5x0cHU7n1"
    )
    run = run_stack(values, "prod")
    home = run.named("llm-edge-home-wireguard")
    install = run.named("llm-cluster-rack-1-install")
    assert install.urn in home.depends_on
    # The same connection as the cluster's to rack-1: user, key, pinned host key, dial limits.
    assert home.secret_digests["/connection"] == install.secret_digests["/connection"]
    for script in (home.inputs["create"], home.inputs["delete"]):
        words = shlex.split(script.replace(";", " ; "))
        sudo = [i for i, w in enumerate(words) if w == "sudo"]
        assert sudo and all(words[i + 1] == "-n" for i in sudo), script
