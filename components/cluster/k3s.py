"""K3sCluster: the cluster every in-cluster area deploys to, and the provider that reaches it.

Two modes, chosen by `ClusterConfig.mode`, ending in the same handle: `kubeconfig` (a
secret Output) and `provider`, the explicit `k8s.Provider` every Kubernetes resource uses.

* `existing`: adopts a running cluster from the kubeconfig held as the stack secret
  `kubeconfig`. Its one artifact, `cluster/label-nodes.sh`, gives the listed nodes the
  labels and taints the platform relies on (GPU class, device-plugin config, GPU taint).
* `bootstrap`: installs k3s on `nodes` over SSH (pulumi-command, the secret
  `ssh_private_key`, each node's `ssh_user`). Per node, in this order:
  `<name>-<node>-preflight` (every host is checked before any host is changed),
  `<name>-<node>-install` (idempotent script; `update` re-runs it, so a changed label or
  version is applied in place), `<name>-<node>-uninstall` (does nothing on create; its
  delete runs k3s's uninstall script). The first server starts the embedded etcd cluster
  (`cluster-init`); the other servers join it one after another, then the agents join.
  When other nodes join, the cluster token is read from the first server (`<name>-token`,
  a secret) and reaches them on stdin; the kubeconfig is read from the first server once every node
  is installed (`<name>-kubeconfig`, a secret), its address rewritten to `api_endpoint`, and
  read again whenever it can have changed: a new k3s version, a new set of servers, or a
  new `kubeconfig_rotated` date (its `triggers`, `kubeconfig_triggers`).

The provider's identity is `cluster.name` (`clusterIdentifier`): pulumi-kubernetes'
`DiffConfig` replaces a provider (and with it every Kubernetes resource) when its kubeconfig
is unknown at preview, which a re-read or any change to the reading command makes it,
unless the provider has a `clusterIdentifier` that did not change
(`provider/pkg/provider/provider.go`). With it, a new kubeconfig updates the provider.

Given `service_account_issuer` (the backups' web identity), the servers sign
service-account tokens as that public URL (k3s's own issuer stays accepted) and
`service_account_jwks` is the key set AWS needs to check them: read from the first server
once every node is installed (`<name>-service-account-keys`, public keys), or in
`existing` mode given in `service_account_jwks` (whose API server the operator sets up).

Why install and uninstall are separate resources: pulumi-command replaces a Command when
its `connection` changes (and has reported spurious connection diffs,
pulumi/pulumi-command#447). A replaced install only re-runs an idempotent script; a
replaced resource carrying the uninstall would wipe a node. The uninstall resource
ignores connection changes, and `protect` (prod) guards it against deletion.

Providers: pulumi-command needs none; the Kubernetes provider is created here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from operator import itemgetter

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from components import versions
from components.cluster import scripts
from components.config import ClusterConfig, LanGpuHost, Node

DIAL_ERROR_LIMIT = 5
PER_DIAL_TIMEOUT_SECONDS = 10
INSTALL_TIMEOUT = "30m"
"""Download, install and (servers) API readiness; GPU nodes also install the toolkit."""


@dataclass(frozen=True, kw_only=True)
class K3sClusterArgs:
    """Inputs of the cluster component."""

    config: ClusterConfig
    kubeconfig: pulumi.Output[str] | None = None
    """Secret kubeconfig of an existing cluster (required in `existing` mode, else unused)."""
    ssh_private_key: pulumi.Output[str] | None = None
    """Secret SSH key reaching every node (required in `bootstrap` mode, else unused)."""
    protect: bool = False
    """Protect each node's uninstall resource (prod): removing a node then needs an
    explicit `pulumi state unprotect`, so no config slip uninstalls k3s from a host."""
    service_account_issuer: pulumi.Input[str] | None = None
    """The public URL service-account tokens are issued as; None (default) keeps k3s's."""
    service_account_jwks: str | None = None
    """`existing` mode with an issuer: the cluster's key set, given in config."""


def node_settings(
    config: ClusterConfig, name: str, issuer: str | None = None
) -> scripts.NodeSettings:
    """The typed settings the scripts of one node are rendered from (pure); `issuer` is
    the service-account issuer URL, which only servers use."""
    node = config.nodes[name]
    first = config.first_server()
    cluster_init = name == first
    return scripts.NodeSettings(
        node_name=name,
        address=node.address,
        role=node.role,
        arch=node.arch.value,
        k3s_version=config.k3s_version,
        cluster_init=cluster_init,
        join_address=None if cluster_init else config.nodes[first].address,
        api_endpoint=config.api_endpoint,
        labels=config.node_labels(name),
        taints=tuple(config.node_taints(name)),
        gpu_count=node.gpu.count if node.gpu is not None else 0,
        nvidia_toolkit_version=(
            versions.NVIDIA_CONTAINER_TOOLKIT_VERSION if node.gpu is not None else None
        ),
        service_account_issuer=issuer if node.role == "server" else None,
    )


def kubeconfig_triggers(config: ClusterConfig) -> list[str]:
    """What makes the kubeconfig worth reading again (pure): the k3s version, the servers
    (their certificates name them), the date the certificates were last rotated."""
    servers = ",".join(f"{n}={config.nodes[n].address}" for n in sorted(config.servers()))
    rotated = config.kubeconfig_rotated.isoformat() if config.kubeconfig_rotated else "never"
    return [f"k3s {config.k3s_version}", f"servers {servers}", f"rotated {rotated}"]


def join_order(config: ClusterConfig) -> list[str]:
    """Nodes in install order: the first server, the other servers, then the agents."""
    first = config.first_server()
    servers = [n for n in config.servers() if n != first]
    agents = [n for n, node in config.nodes.items() if node.role == "agent"]
    return [first, *servers, *agents]


def bootstrap_artifacts(config: ClusterConfig, issuer: str | None = None) -> dict[str, str]:
    """Every script of a bootstrap, by path under `files/` (pure)."""
    files: dict[str, str] = {}
    for name in join_order(config):
        settings = node_settings(config, name, issuer)
        files[f"cluster/{name}-preflight.sh"] = scripts.preflight_script(settings)
        files[f"cluster/{name}-install.sh"] = scripts.install_script(settings)
        files[f"cluster/{name}-uninstall.sh"] = scripts.uninstall_script(settings)
    return files


def existing_artifacts(config: ClusterConfig) -> dict[str, str]:
    """The node-labelling script of an existing cluster, when it lists nodes (pure)."""
    if not config.nodes:
        return {}
    nodes = {name: (config.node_labels(name), config.node_taints(name)) for name in config.nodes}
    return {"cluster/label-nodes.sh": scripts.label_nodes_script(nodes)}


def _install_command(settings: scripts.NodeSettings, issuer: str) -> str:
    """The install command of a server that signs tokens as `issuer`."""
    script = scripts.install_script(replace(settings, service_account_issuer=issuer))
    return scripts.command_line(script, sudo=True)


def ssh_connection(
    host: Node | LanGpuHost, key: pulumi.Output[str]
) -> command.remote.ConnectionArgs:
    """SSH to a cluster node or a LAN GPU host: its user, the stack's key, its pinned
    host key, and bounded dial retries."""
    return command.remote.ConnectionArgs(
        host=str(host.address),
        user=host.ssh_user,
        private_key=key,
        host_key=host.ssh_host_key,
        dial_error_limit=DIAL_ERROR_LIMIT,
        per_dial_timeout=PER_DIAL_TIMEOUT_SECONDS,
    )


def _secret(value: pulumi.Output[str]) -> pulumi.Output[str]:
    secret: pulumi.Output[str] = pulumi.Output.secret(value)
    return secret


class K3sCluster(pulumi.ComponentResource):
    """A k3s cluster reached through an explicit Kubernetes provider."""

    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    service_account_jwks: pulumi.Output[str] | None
    """The key set of the public service-account issuer (None without one)."""
    nodes_ready: list[pulumi.Resource]
    """The install of every node (empty for an existing cluster)."""
    installs: dict[str, pulumi.Resource]
    """Each node's install by node name (empty for an existing cluster)."""
    artifacts: dict[str, pulumi.Output[str]]
    """Scripts as run on the hosts (path under `files/` → text), for the render."""

    def __init__(
        self, name: str, args: K3sClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:cluster:K3sCluster", name, None, opts)
        config = args.config
        self.nodes_ready = []
        self.installs = {}
        self._ssh_key: pulumi.Output[str] | None = None
        self._config = config
        self.service_account_jwks = None
        issuer = args.service_account_issuer
        if config.mode == "existing":
            if args.kubeconfig is None:
                raise ValueError("K3sCluster: existing mode needs the kubeconfig secret")
            if issuer is not None and args.service_account_jwks is None:
                raise ValueError("K3sCluster: an issuer on an existing cluster needs its jwks")
            self.kubeconfig = _secret(args.kubeconfig)
            if issuer is not None:
                self.service_account_jwks = pulumi.Output.from_input(
                    args.service_account_jwks or ""
                )
            self.artifacts = {
                path: pulumi.Output.from_input(text)
                for path, text in existing_artifacts(config).items()
            }
        else:
            if args.ssh_private_key is None:
                raise ValueError("K3sCluster: bootstrap mode needs the ssh_private_key secret")
            self.kubeconfig = self._bootstrap(name, config, args)
            files = bootstrap_artifacts(config)
            if issuer is None:
                self.artifacts = {p: pulumi.Output.from_input(t) for p, t in files.items()}
            else:
                # Rendered once with the issuer, then split by path.
                issued = pulumi.Output.from_input(issuer).apply(
                    partial(bootstrap_artifacts, config)
                )
                self.artifacts = {p: issued.apply(itemgetter(p)) for p in files}
        self.provider = k8s.Provider(
            f"{name}-provider",
            kubeconfig=self.kubeconfig,
            cluster_identifier=config.name,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"kubeconfig": self.kubeconfig})

    def connection(self, node_name: str) -> command.remote.ConnectionArgs:
        """SSH to a bootstrapped node as the cluster reaches it (its user, the stack's key,
        its pinned host key), for other areas' commands on that host."""
        if self._ssh_key is None:
            raise ValueError("K3sCluster: only a bootstrapped cluster's nodes are reached over SSH")
        return ssh_connection(self._config.nodes[node_name], self._ssh_key)

    def _bootstrap(
        self, name: str, config: ClusterConfig, args: K3sClusterArgs
    ) -> pulumi.Output[str]:
        assert args.ssh_private_key is not None and config.api_endpoint is not None
        key = _secret(args.ssh_private_key)
        self._ssh_key = key
        order = join_order(config)
        first = order[0]
        child = pulumi.ResourceOptions(parent=self)

        preflights: list[pulumi.Resource] = []
        for node_name in order:
            settings = node_settings(config, node_name)
            preflights.append(
                command.remote.Command(
                    f"{name}-{node_name}-preflight",
                    connection=ssh_connection(config.nodes[node_name], key),
                    create=scripts.command_line(scripts.preflight_script(settings), sudo=False),
                    opts=child,
                )
            )

        token: pulumi.Output[str] | None = None
        servers: list[pulumi.Resource] = []
        previous: list[pulumi.Resource] = []
        issuer = args.service_account_issuer
        for node_name in order:
            node = config.nodes[node_name]
            settings = node_settings(config, node_name)
            script: pulumi.Input[str] = scripts.command_line(
                scripts.install_script(settings), sudo=True
            )
            if issuer is not None and node.role == "server":
                script = pulumi.Output.from_input(issuer).apply(partial(_install_command, settings))
            # Servers join one at a time (etcd adds one member at a time); agents wait
            # for every server.
            after = previous if node.role == "server" else servers
            install = command.remote.Command(
                f"{name}-{node_name}-install",
                connection=ssh_connection(node, key),
                create=script,
                update=script,
                stdin=token if settings.joins else None,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*preflights, *after],
                    custom_timeouts=pulumi.CustomTimeouts(
                        create=INSTALL_TIMEOUT, update=INSTALL_TIMEOUT
                    ),
                ),
            )
            command.remote.Command(
                f"{name}-{node_name}-uninstall",
                connection=ssh_connection(node, key),
                create=":",
                delete=scripts.command_line(scripts.uninstall_script(settings), sudo=True),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[install],
                    protect=args.protect,
                    ignore_changes=["connection"],
                ),
            )
            self.nodes_ready.append(install)
            self.installs[node_name] = install
            if node.role == "server":
                servers.append(install)
                previous = [install]
            if node_name == first and len(order) > 1:
                token = self._read_secret(
                    f"{name}-token", config.nodes[first], key, scripts.SERVER_TOKEN_PATH, [install]
                ).apply(lambda text: (text or "").strip())

        if issuer is not None:
            # Public keys: what the API server publishes for anyone allowed to ask.
            keys = command.remote.Command(
                f"{name}-service-account-keys",
                connection=ssh_connection(config.nodes[first], key),
                create=f"sudo -n k3s kubectl get --raw {scripts.JWKS_PATH}",
                triggers=[issuer],
                opts=pulumi.ResourceOptions(parent=self, depends_on=self.nodes_ready),
            )
            self.service_account_jwks = keys.stdout
        raw = self._read_secret(
            f"{name}-kubeconfig",
            config.nodes[first],
            key,
            scripts.KUBECONFIG_PATH,
            self.nodes_ready,
            triggers=kubeconfig_triggers(config),
        )
        endpoint = config.api_endpoint
        # An empty stdout only occurs under the test mocks (a failed `cat` fails the command).
        return _secret(
            raw.apply(lambda text: scripts.rewrite_kubeconfig(text, endpoint) if text else "")
        )

    def _read_secret(
        self,
        resource_name: str,
        node: Node,
        key: pulumi.Output[str],
        path: str,
        after: list[pulumi.Resource],
        triggers: list[str] | None = None,
    ) -> pulumi.Output[str]:
        """A root-only file of a node as a secret Output, never printed in the log; read
        again when a trigger changes."""
        reader = command.remote.Command(
            resource_name,
            connection=ssh_connection(node, key),
            create=f"sudo -n cat {path}",
            logging=command.remote.Logging.NONE,
            triggers=triggers,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=after, additional_secret_outputs=["stdout"]
            ),
        )
        return _secret(reader.stdout)
