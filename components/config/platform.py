"""The whole stack config and the rules that span areas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from components.helm import RELEASE_NAMES
from components.inference.fit import MIN_CONTEXT, Fit, estimate, lan_host_estimates
from components.inference.placement import pack, pods_of
from components.secret_text import looks_like_secret, secret_value_path

from ._base import DnsLabel, FrozenModel, Problem, raise_if_problems
from .addons import DataLayerConfig, ObservabilityConfig, VpaConfig
from .cluster import ClusterConfig, GpuSharing
from .edge import AwsConfig, EdgeConfig
from .gateway import ClientConfig, LlmGatewayConfig
from .inference import InferenceConfig, LocalModel
from .namespaces import NamespacesConfig
from .runners import RunnersConfig
from .services import IngressConfig, MeshConfig, PkiConfig

PROD_MIN_GATEWAY_REPLICAS = 2
MESH_HA_MIN_NODES = 3


def _leaves(values: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf of a values mapping, with its key path (a list item by its index)."""
    if isinstance(values, dict):
        for key, value in values.items():
            yield from _leaves(value, (*path, str(key)))
    elif isinstance(values, list):
        for index, item in enumerate(values):
            yield from _leaves(item, (*path, str(index)))
    elif path:
        yield path, values


def _plain_secret(path: tuple[str, ...], value: Any) -> bool:
    """A Helm value that is, or is named like, a credential (switches and blanks are not)."""
    if isinstance(value, bool) or value is None or value == "":
        return False
    return secret_value_path(list(path)) or looks_like_secret(value)


class PlatformConfig(FrozenModel):
    """Everything one stack deploys; each field is one top-level key of `Pulumi.<stack>.yaml`."""

    environment: Literal["dev", "prod"] = Field(
        description="The stack's tier, whatever its name: `prod` turns on replicas, "
        "disruption budgets, HA control planes and deletion protection of stateful resources, "
        "and makes the policy pack mandatory (`policy/config/<tier>.json`); `dev` keeps one of "
        "each and reports the policies as advisory."
    )
    aws: AwsConfig = Field(
        default_factory=AwsConfig,
        description="AWS region, zones and account-level choices for the edge and backups.",
    )
    cluster: ClusterConfig = Field(
        description="The k3s cluster: its nodes, GPU classes and LAN GPU hosts."
    )
    namespaces: NamespacesConfig = Field(
        default_factory=NamespacesConfig,
        description="Kubernetes namespace of each platform area.",
    )
    edge: EdgeConfig | None = Field(
        default=None, description="Edge gateway on EC2; no edge is deployed when absent."
    )
    pki: PkiConfig = Field(
        default_factory=PkiConfig,
        description="cert-manager and the internal CA that signs in-cluster certificates.",
    )
    ingress: IngressConfig = Field(
        default_factory=IngressConfig,
        description="Traefik, the ingress controller behind the edge.",
    )
    mesh: MeshConfig = Field(
        default_factory=MeshConfig,
        description="Linkerd: mutual TLS between the platform's workloads.",
    )
    inference: InferenceConfig = Field(
        default_factory=InferenceConfig,
        description="The local models vLLM serves, on cluster GPU nodes or LAN GPU hosts.",
    )
    llm_gateway: LlmGatewayConfig = Field(
        default_factory=LlmGatewayConfig,
        description="The LiteLLM proxy: routing, failover to cloud models, keys and spend.",
    )
    clients: dict[DnsLabel, ClientConfig] = Field(
        default_factory=dict, description="Named API clients: an edge key and a gateway key each."
    )
    observability: ObservabilityConfig = Field(
        default_factory=ObservabilityConfig,
        description="Prometheus, Grafana and the alerts.",
    )
    data: DataLayerConfig = Field(
        default_factory=DataLayerConfig,
        description="The optional RAG data layer (vector store and embeddings).",
    )
    vpa: VpaConfig = Field(
        default_factory=VpaConfig,
        description="Resource recommendations (Vertical Pod Autoscaler, recommendation "
        "mode); off unless enabled.",
    )
    runners: RunnersConfig = Field(
        default_factory=RunnersConfig,
        description="GitHub Actions runners in the cluster (Actions Runner Controller scale "
        "sets), which the deploy workflows run on; off by default. Enable them on one stack "
        "only: the scale sets' names are the workflows' `runs-on`.",
    )
    helm_values: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per Helm release (by release name), values merged last over those the "
        "program sets. The render holds every key to the pinned chart: one the chart does "
        "not read, or that its values schema refuses, is a config error. No secrets: a key "
        "named like a credential (`adminPassword`, `token`) or a value that looks like one "
        "is refused; name a Kubernetes Secret instead (`existingSecret`).",
    )

    _stack: str | None = PrivateAttr(default=None)

    @property
    def stack_name(self) -> str:
        """The stack's name (its `Pulumi.<name>.yaml`), which names its AWS resources; the
        tier when the config was read outside a stack (tests, tools)."""
        return self._stack or self.environment

    def for_stack(self, stack: str) -> PlatformConfig:
        """This config as the config of the stack named `stack`."""
        copy = self.model_copy()
        copy._stack = stack
        return copy

    @property
    def is_prod(self) -> bool:
        """True for the production environment."""
        return self.environment == "prod"

    @property
    def has_s3_writers(self) -> bool:
        """Whether anything in the cluster writes to S3: Postgres backups and vector DB
        snapshots run on prod only."""
        return self.is_prod

    @property
    def uses_web_identity(self) -> bool:
        """Whether the writers get their credentials from the cluster's service-account
        tokens, so AWS must trust the cluster's issuer."""
        return self.has_s3_writers and self.aws.backup_credentials.mode == "web_identity"

    @property
    def uses_aws(self) -> bool:
        """Whether anything of the stack is on AWS (the edge, the writers' buckets): only
        then does the program make an AWS provider, and need AWS credentials."""
        return self.edge_enabled or self.has_s3_writers

    @property
    def edge_enabled(self) -> bool:
        """Whether the stack deploys the edge gateway."""
        return self.edge is not None and self.edge.enabled

    @model_validator(mode="after")
    def _cross_area_rules(self) -> PlatformConfig:
        raise_if_problems(
            [
                *self._model_references(),
                *self._lan_services(),
                *self._gpu_capacity(),
                *self._gpu_per_node(),
                *self._client_references(),
                *self._environment_rules(),
                *self._ingress_rules(),
                *self._edge_rules(),
                *self._backup_credential_rules(),
                *self._runner_rules(),
                *self._helm_values(),
            ]
        )
        return self

    def _model_references(self) -> Iterator[Problem]:
        cluster = self.cluster
        clouds = self.llm_gateway.cloud_models
        for name, model in self.inference.models.items():
            path = ("inference", "models", name)
            if name in clouds:
                yield Problem(path, "a local and a cloud model share this name", name)
            if model.gpu_class is not None and model.gpu_class not in cluster.gpu_classes:
                yield Problem(
                    (*path, "gpu_class"),
                    f"no such GPU class; defined: {sorted(cluster.gpu_classes) or 'none'}",
                    model.gpu_class,
                )
            if model.lan_host is not None and model.lan_host not in cluster.lan_gpu_hosts:
                yield Problem(
                    (*path, "lan_host"),
                    f"no such LAN GPU host; defined: {sorted(cluster.lan_gpu_hosts) or 'none'}",
                    model.lan_host,
                )
            if model.cloud_fallback is not None and model.cloud_fallback not in clouds:
                yield Problem(
                    (*path, "cloud_fallback"),
                    f"no such cloud model; defined: {sorted(clouds) or 'none'}",
                    model.cloud_fallback,
                )
            if model.first_token_seconds > self.llm_gateway.router.request_timeout_seconds:
                yield Problem(
                    ("llm_gateway", "router", "request_timeout_seconds"),
                    f"shorter than the first-token time model {name!r} needs "
                    f"({model.first_token_seconds}s); its requests would always time out",
                    self.llm_gateway.router.request_timeout_seconds,
                )
            yield from self._fit(name, model)
            if model.autoscaling is not None and not self.observability.enabled:
                yield Problem(
                    (*path, "autoscaling"),
                    "scales on metrics Prometheus collects: needs observability.enabled",
                    None,
                )
            if self.model_in_maintenance(name) and model.cloud_fallback is None:
                yield Problem(
                    (*path, "cloud_fallback"),
                    "its GPU is in maintenance, so a cloud fallback must serve it",
                    None,
                )
        if self.data.enabled and self.data.embeddings_model in {
            *self.inference.models,
            *self.llm_gateway.cloud_models,
        }:
            yield Problem(
                ("data", "embeddings_model"),
                "already names a chat model; the gateway serves every model under one name",
                self.data.embeddings_model,
            )
        if self.data.embeddings_gpu_class is not None and (
            self.data.embeddings_gpu_class not in cluster.gpu_classes
        ):
            yield Problem(
                ("data", "embeddings_gpu_class"),
                f"no such GPU class; defined: {sorted(cluster.gpu_classes) or 'none'}",
                self.data.embeddings_gpu_class,
            )

    def _fit(self, name: str, model: LocalModel) -> Iterator[Problem]:
        """A model must fit its GPUs (the estimate in `inference.fit`): a cluster model its
        GPU class, a LAN model its share of the host beside the host's other models."""
        fit = self.model_fit(name)
        if fit is None:
            return
        if model.placement == "cluster":
            where = f"GPU class {model.gpu_class!r}"
        else:
            others = sorted(set(self.lan_models(model.lan_host or "")) - {name})
            where = f"LAN host {model.lan_host!r}" + (f" beside {others}" if others else "")
        if not fit.fits:
            yield Problem(
                ("inference", "models", name),
                f"does not fit {where}: {fit.arithmetic}; even "
                f"{MIN_CONTEXT} tokens of context do not fit. Use a smaller weight format, "
                "fewer sequences, more GPUs or a larger GPU class",
                model.weight_format,
            )
        elif fit.max_model_len < model.context_length and self.inference.strict(name):
            yield Problem(
                ("inference", "models", name, "context_length"),
                f"only {fit.max_model_len} tokens fit on {where} and strict_context is on: "
                f"{fit.arithmetic}. Ask for less context or fewer sequences, or turn "
                "strict_context off to serve the shorter context",
                model.context_length,
            )

    def _lan_services(self) -> Iterator[Problem]:
        """Each LAN model names a service of its host; vLLM serves one model per port."""
        served: dict[tuple[str, int], list[str]] = {}
        for name, model in self.inference.models.items():
            host = self.cluster.lan_gpu_hosts.get(model.lan_host or "")
            path = ("inference", "models", name)
            if model.placement != "lan" or host is None:
                for key in ("lan_port", "backend_model"):
                    if getattr(model, key) is not None:
                        yield Problem(
                            (*path, key), "only for a model on a LAN host", getattr(model, key)
                        )
                continue
            ports = [s.port for s in host.services]
            port = self.lan_port(name)
            service = host.service(port) if port is not None else None
            if port is None:
                yield Problem(
                    (*path, "lan_port"),
                    f"required: host {model.lan_host!r} runs several services, on {ports}",
                    None,
                )
                continue
            if service is None:
                yield Problem(
                    (*path, "lan_port"),
                    f"host {model.lan_host!r} runs no service on this port; its services: {ports}",
                    port,
                )
                continue
            served.setdefault((model.lan_host or "", port), []).append(name)
            if "gpu_count" in model.model_fields_set and model.gpu_count != host.gpu_count:
                yield Problem(
                    (*path, "gpu_count"),
                    f"a model on LAN host {model.lan_host!r} uses all {host.gpu_count} of its "
                    "GPUs; leave gpu_count out",
                    model.gpu_count,
                )
            if service.server == "vllm":
                if model.backend_model is not None:
                    yield Problem(
                        (*path, "backend_model"),
                        "a vLLM service serves the model under its catalog name; remove it",
                        model.backend_model,
                    )
                continue
            if model.backend_model is None:
                yield Problem(
                    (*path, "backend_model"),
                    "required on an Ollama service: the name Ollama pulls, e.g. `qwen3:8b`",
                    None,
                )
            for key in ("extra_args", "image"):
                if getattr(model, key):
                    yield Problem(
                        (*path, key),
                        "only for a model served by vLLM (Ollama serves this one)",
                        getattr(model, key),
                    )
        for (host_name, port), names in sorted(served.items()):
            host = self.cluster.lan_gpu_hosts[host_name]
            service = host.service(port)
            assert service is not None
            if service.server == "vllm" and len(names) > 1:
                for extra in sorted(names)[1:]:
                    yield Problem(
                        ("inference", "models", extra, "lan_port"),
                        f"port {port} of {host_name!r} is a vLLM service, which serves one "
                        f"model, and {sorted(names)[0]!r} is already on it; give this model "
                        "its own service",
                        port,
                    )
            sequences = {self.inference.models[n].max_concurrent_sequences for n in names}
            if service.server == "ollama" and len(sequences) > 1:
                for extra in sorted(names):
                    yield Problem(
                        ("inference", "models", extra, "max_concurrent_sequences"),
                        f"the models of the Ollama service on port {port} of {host_name!r} "
                        "share one OLLAMA_NUM_PARALLEL; give them the same value",
                        self.inference.models[extra].max_concurrent_sequences,
                    )
        for host_name, host in sorted(self.cluster.lan_gpu_hosts.items()):
            for index, service in enumerate(host.services):
                if (host_name, service.port) not in served:
                    yield Problem(
                        ("cluster", "lan_gpu_hosts", host_name, "services", index),
                        "serves no model: place a model on it (`lan_host`, `lan_port`) or "
                        "remove it",
                        service.port,
                    )

    def _runner_rules(self) -> Iterator[Problem]:
        """Each CPU scale set needs a node of its architecture that takes ordinary pods;
        the GPU runner's class must exist (its GPUs count in `_gpu_capacity`)."""
        sets = self.runners.scale_sets()
        hard = {"NoSchedule", "NoExecute"}
        for kind in ("amd64", "arm64"):
            if kind not in sets or not self.cluster.nodes:
                continue
            if not any(
                node.arch.value == kind
                and node.gpu is None
                and not any(t.effect in hard for t in node.taints)
                for node in self.cluster.nodes.values()
            ):
                yield Problem(
                    ("runners", kind),
                    f"no {kind} node without a GPU or a NoSchedule taint in cluster.nodes to "
                    "run it; set it to null or add such a node",
                    kind,
                )
        gpu = self.runners.gpu if "gpu" in sets else None
        if gpu is not None and gpu.gpu_class not in self.cluster.gpu_classes:
            yield Problem(
                ("runners", "gpu", "gpu_class"),
                f"no such GPU class; defined: {sorted(self.cluster.gpu_classes) or 'none'}",
                gpu.gpu_class,
            )

    def _gpu_capacity(self) -> Iterator[Problem]:
        cluster = self.cluster
        demand: dict[str, list[str]] = {}
        gpu_runner = self.runners.gpu if "gpu" in self.runners.scale_sets() else None
        if gpu_runner is not None and gpu_runner.gpu_class in cluster.gpu_classes:
            # Runner pods hold a GPU while a job runs: the class must have one free for each.
            demand[gpu_runner.gpu_class] = ["the GPU runner"] * gpu_runner.max_runners
        for name, model in self.inference.models.items():
            if model.placement != "cluster" or model.gpu_class not in cluster.gpu_classes:
                continue
            assert model.gpu_class is not None
            demand.setdefault(model.gpu_class, []).extend(
                [name] * model.ceiling_replicas * model.gpu_count
            )
            largest_node = max(
                (
                    n.gpu.count
                    for n in cluster.nodes.values()
                    if n.gpu is not None and n.gpu.gpu_class == model.gpu_class
                ),
                default=0,
            )
            if model.gpu_count > largest_node:
                yield Problem(
                    ("inference", "models", name, "gpu_count"),
                    f"no node has {model.gpu_count} GPUs of class {model.gpu_class!r} "
                    f"(largest has {largest_node}); tensor parallelism stays within a node",
                    model.gpu_count,
                )
        for gpu_class, users in sorted(demand.items()):
            capacity = cluster.gpu_capacity(gpu_class)
            if len(users) > capacity:
                ceilings = list(self._ceiling_problems(gpu_class, set(users)))
                if ceilings:
                    yield from ceilings
                    continue
                runners = users.count("the GPU runner")
                # The models fit without the runner: it is the runner that does not.
                runner = runners > 0 and len(users) - runners <= capacity
                yield Problem(
                    ("runners", "gpu", "max_runners") if runner else ("inference", "models"),
                    f"models on GPU class {gpu_class!r} need {len(users)} GPUs "
                    f"(replicas, or autoscaling.max, x gpu_count of {sorted(set(users))}) "
                    "but the nodes offer "
                    f"{capacity}; add nodes or enable time-slicing on the class",
                    len(users),
                )

    def _gpu_per_node(self) -> Iterator[Problem]:
        """Each model-server pod must fit the free GPUs of one node of its class."""
        cluster = self.cluster
        by_class: dict[str, dict[str, tuple[int, int]]] = {}
        for name, model in sorted(self.inference.models.items()):
            gpu = cluster.gpu_classes.get(model.gpu_class or "")
            if model.placement != "cluster" or gpu is None:
                continue
            assert model.gpu_class is not None
            if gpu.sharing is GpuSharing.TIME_SLICING and model.gpu_count > 1:
                yield Problem(
                    ("inference", "models", name, "gpu_count"),
                    f"GPU class {model.gpu_class!r} is time-sliced: a pod asking for several "
                    "GPUs may get slices of one physical GPU, so tensor parallelism needs a "
                    "class without sharing",
                    model.gpu_count,
                )
            by_class.setdefault(model.gpu_class, {})[name] = (
                model.gpu_count,
                model.ceiling_replicas,
            )
        for gpu_class, models in sorted(by_class.items()):
            demand = sum(gpus * replicas for gpus, replicas in models.values())
            if demand > cluster.gpu_capacity(gpu_class):
                continue  # reported by _gpu_capacity
            spec = cluster.gpu_classes[gpu_class]
            per_gpu = spec.time_slicing_replicas if spec.sharing is GpuSharing.TIME_SLICING else 1
            nodes = {
                n: node.gpu.count * per_gpu
                for n, node in cluster.nodes.items()
                if node.gpu is not None and node.gpu.gpu_class == gpu_class
            }
            if any(gpus > max(nodes.values(), default=0) for gpus, _ in models.values()):
                continue  # reported by _gpu_capacity (larger than any node)
            local = self.inference.cache_access_mode == "ReadWriteOnce"
            _, unplaced = pack(nodes, pods_of(models), same_node=local)
            scaled = {p.model for p in unplaced} & self._autoscaled()
            if scaled:
                yield from self._ceiling_problems(gpu_class, scaled)
            elif unplaced:
                why = "a pod's GPUs are on one node"
                if local:
                    why += ", and with ReadWriteOnce caches all replicas of a model are too"
                yield Problem(
                    ("inference", "models"),
                    f"the GPUs of class {gpu_class!r} add up, but no node has room for "
                    f"{sorted({p.model for p in unplaced})} ({why}; nodes offer "
                    f"{dict(sorted(nodes.items()))}); add GPUs to a node, move a model to "
                    "another class or use ReadWriteMany caches",
                    [f"{p.model}: {p.gpus} GPUs" for p in unplaced],
                )

    def _ceiling_problems(self, gpu_class: str, involved: set[str]) -> Iterator[Problem]:
        """An `autoscaling.max` among `involved` that the class's nodes cannot hold beside
        the other models' ceilings, with the most they hold."""
        cluster = self.cluster
        spec = cluster.gpu_classes[gpu_class]
        per_gpu = spec.time_slicing_replicas if spec.sharing is GpuSharing.TIME_SLICING else 1
        nodes = {
            n: node.gpu.count * per_gpu
            for n, node in cluster.nodes.items()
            if node.gpu is not None and node.gpu.gpu_class == gpu_class
        }
        models = {
            n: (m.gpu_count, m.ceiling_replicas)
            for n, m in sorted(self.inference.models.items())
            if m.placement == "cluster" and m.gpu_class == gpu_class
        }
        local = self.inference.cache_access_mode == "ReadWriteOnce"
        where = f"the nodes of GPU class {gpu_class!r} ({dict(sorted(nodes.items()))})"
        for name in sorted(involved & self._autoscaled()):
            wanted = models[name][1]
            fits = _most_that_fit(nodes, models, name, same_node=local)
            if fits >= wanted:
                continue
            yield Problem(
                ("inference", "models", name, "autoscaling", "max"),
                f"{where} hold at most {fits} replicas of it beside the other models' "
                f"replicas (or their autoscaling.max); set max to {fits}, or add GPUs"
                if fits
                else f"{where} have no room for one replica of it beside the other "
                "models' replicas (or their autoscaling.max); lower theirs or add GPUs",
                wanted,
            )

    def _autoscaled(self) -> set[str]:
        return {n for n, m in self.inference.models.items() if m.autoscaling is not None}

    @property
    def autoscaled_models(self) -> list[str]:
        """In-cluster models whose servers follow demand, sorted."""
        return sorted(self._autoscaled())

    def _client_references(self) -> Iterator[Problem]:
        known = set(self.inference.models) | set(self.llm_gateway.cloud_models)
        servers = self.llm_gateway.mcp_servers
        for name, client in self.clients.items():
            for model in client.models:
                if model not in known:
                    yield Problem(
                        ("clients", name, "models"),
                        f"no such model; defined: {sorted(known) or 'none'}",
                        model,
                    )
            for server in client.mcp_servers:
                if server not in servers:
                    yield Problem(
                        ("clients", name, "mcp_servers"),
                        "no such MCP server in llm_gateway.mcp_servers; defined: "
                        f"{sorted(servers) or 'none'}",
                        server,
                    )

    def _environment_rules(self) -> Iterator[Problem]:
        if not self.is_prod:
            return
        if self.llm_gateway.replicas < PROD_MIN_GATEWAY_REPLICAS:
            yield Problem(
                ("llm_gateway", "replicas"),
                f"prod needs at least {PROD_MIN_GATEWAY_REPLICAS} gateway replicas",
                self.llm_gateway.replicas,
            )
        nodes = self.cluster.schedulable_general_nodes()
        if self.mesh.enabled and nodes < MESH_HA_MIN_NODES:
            yield Problem(
                ("cluster", "nodes"),
                f"prod's HA Linkerd control plane needs {MESH_HA_MIN_NODES} schedulable "
                f"untainted nodes, the inventory has {nodes}",
                nodes,
            )

    def _backup_credential_rules(self) -> Iterator[Problem]:
        credentials = self.aws.backup_credentials
        path = ("aws", "backup_credentials", "service_account_jwks")
        given = credentials.service_account_jwks is not None
        if self.cluster.mode == "bootstrap" and given:
            yield Problem(path, "a bootstrapped cluster's keys are read from it; remove", "set")
        elif self.uses_web_identity and self.cluster.mode == "existing" and not given:
            yield Problem(
                path,
                "required for web_identity with an existing cluster: the output of "
                "`kubectl get --raw /openid/v1/jwks` (docs/llm-gateway-ops.md)",
                None,
            )

    @property
    def ingress_mode(self) -> str:
        """`platform` (the pinned Traefik) or `bundled` (k3s's own)."""
        return self.ingress.mode or "platform"

    @property
    def ingress_namespace(self) -> str:
        """Where the serving Traefik runs: its own namespace, or k3s's `kube-system`."""
        return "kube-system" if self.ingress_mode == "bundled" else "traefik"

    def _ingress_rules(self) -> Iterator[Problem]:
        where = ("ingress", "mode")
        mode = self.ingress.mode
        if self.cluster.mode == "existing" and mode is None:
            yield Problem(
                where,
                "required with cluster.mode existing (stock k3s runs its own Traefik): "
                "`bundled` adopts it; `platform` installs the pinned Traefik and needs k3s "
                "started with `--disable=traefik` (`disable: [traefik]` in each server's "
                "/etc/rancher/k3s/config.yaml), or two Traefiks contend for ports 80/443 and "
                "the `traefik` IngressClass",
                mode,
            )
        if mode == "bundled" and self.cluster.mode == "bootstrap":
            yield Problem(
                where,
                "bootstrap mode starts k3s with `--disable=traefik`: use `platform` (or leave "
                "it unset)",
                mode,
            )
        if mode == "bundled" and self.mesh.enabled:
            yield Problem(
                where,
                "k3s's Traefik runs in kube-system, which Linkerd never injects, so the "
                "gateway's mesh policy would refuse it: set mesh.enabled: false, or use "
                "`platform` with k3s started with `--disable=traefik`",
                mode,
            )

    def _edge_rules(self) -> Iterator[Problem]:
        if not self.edge_enabled:
            return
        if self.cluster.wireguard_node is None:
            yield Problem(
                ("cluster", "wireguard_node"), "the edge needs a node to end the tunnel on", None
            )
        if not self.clients:
            yield Problem(("clients",), "the edge needs at least one named client", {})
        assert self.edge is not None
        home = self.edge.wireguard.home_public_cidr
        if self.is_prod and home.prefixlen == 0:
            yield Problem(
                ("edge", "wireguard", "home_public_cidr"),
                "prod opens no port but 80/443 to the whole internet; give the home address",
                str(home),
            )
        for client in sorted(set(self.edge.client_key_secrets) - set(self.clients)):
            yield Problem(
                ("edge", "client_key_secrets", client), "not a client in `clients`", client
            )
        node = self.cluster.nodes.get(self.cluster.wireguard_node or "")
        ingress = self.cluster.ingress_node_address
        if (
            node is not None
            and ingress is not None
            and ingress != node.address
            and self.edge.wireguard.home_lan_interface is None
        ):
            yield Problem(
                ("edge", "wireguard", "home_lan_interface"),
                f"required: the ingress {ingress} is not the tunnel node {node.address}",
                None,
            )

    def lan_port(self, name: str) -> int | None:
        """The port of the LAN host service serving a LAN model: its `lan_port`, or the
        port of the host's only service."""
        model = self.inference.models[name]
        if model.lan_port is not None:
            return model.lan_port
        host = self.cluster.lan_gpu_hosts.get(model.lan_host or "")
        if host is None or len(host.services) != 1:
            return None
        return host.services[0].port

    def lan_models(self, host_name: str) -> dict[str, LocalModel]:
        """The models a LAN host serves, by name."""
        return {
            name: model
            for name, model in sorted(self.inference.models.items())
            if model.placement == "lan" and model.lan_host == host_name
        }

    def model_fit(self, name: str) -> Fit | None:
        """The fit of a local model on its GPUs; None when they are not (validly) known."""
        model = self.inference.models[name]
        if model.placement == "cluster":
            gpu = self.cluster.gpu_classes.get(model.gpu_class or "")
            return estimate(model, gpu) if gpu is not None else None
        host = self.cluster.lan_gpu_hosts.get(model.lan_host or "")
        if host is None or host.gpu_class not in self.cluster.gpu_classes:
            return None
        gpu = self.cluster.gpu_classes[host.gpu_class]
        return lan_host_estimates(self.lan_models(model.lan_host or ""), gpu, host.gpu_count)[name]

    def _helm_values(self) -> Iterator[Problem]:
        for release, values in sorted(self.helm_values.items()):
            if release not in RELEASE_NAMES:
                yield Problem(
                    ("helm_values", release),
                    f"not a release of the platform; releases: {sorted(RELEASE_NAMES)}",
                    release,
                )
            elif not values:
                yield Problem(("helm_values", release), "empty; remove it", values)
            for path, value in _leaves(values):
                if _plain_secret(path, value):
                    yield Problem(
                        ("helm_values", release, *path),
                        "looks like a secret: Helm values are stored in plain text (in the "
                        "release, the render and the stack's state); keep it in a Kubernetes "
                        "Secret and give the chart its name (an `existingSecret`-style value)",
                        value,
                    )

    def model_in_maintenance(self, name: str) -> bool:
        """Whether a local model's GPUs are switched to maintenance."""
        model = self.inference.models[name]
        if model.placement == "lan":
            host = self.cluster.lan_gpu_hosts.get(model.lan_host or "")
            return host is not None and host.maintenance
        if model.gpu_class is None or model.gpu_class not in self.cluster.gpu_classes:
            return False
        return self.cluster.class_in_maintenance(model.gpu_class)

    def downloads_model(self, name: str) -> bool:
        """Whether the platform itself fetches a model's weights: a cluster model's server,
        or the Compose file it installs on a `managed` LAN host (an unmanaged host reads
        its token from its own `.env`)."""
        model = self.inference.models[name]
        if model.placement == "cluster":
            return True
        host = self.cluster.lan_gpu_hosts.get(model.lan_host or "")
        return host is not None and host.managed

    def required_secrets(self) -> tuple[str, ...]:
        """Secret config keys this stack needs, sorted."""
        keys: set[str] = set()
        keys.add("kubeconfig" if self.cluster.mode == "existing" else "ssh_private_key")
        keys.update(m.api_key_secret for m in self.llm_gateway.cloud_models.values())
        if self.edge_enabled and self.edge is not None:
            keys.update(self.edge.client_key_secrets.values())
        if any(m.gated and self.downloads_model(n) for n, m in self.inference.models.items()):
            keys.add("huggingface_token")
        for server in self.llm_gateway.mcp_servers.values():
            keys.update(server.secret_headers.values())
        if self.runners.enabled and self.runners.github_app is not None:
            keys.add(self.runners.github_app.private_key_secret)
        return tuple(sorted(keys))


def _most_that_fit(
    nodes: dict[str, int],
    models: dict[str, tuple[int, int]],
    name: str,
    *,
    same_node: bool,
) -> int:
    """The most replicas of `name` that pack beside the other models' ceilings."""
    gpus, wanted = models[name]
    for count in range(wanted, 0, -1):
        trial = {**models, name: (gpus, count)}
        if not pack(nodes, pods_of(trial), same_node=same_node)[1]:
            return count
    return 0
