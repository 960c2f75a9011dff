"""Typed stack config: the one source of truth, validated once at the entry point."""

from ._base import ConfigError, ConfigProblems, Problem
from .addons import DataLayerConfig, ObservabilityConfig, VpaConfig
from .cluster import Arch, ClusterConfig, GpuClass, GpuSharing, LanGpuHost, Node
from .edge import AwsConfig, EdgeConfig, WireGuardConfig
from .gateway import ClientConfig, CloudModel, LlmGatewayConfig, RouterConfig
from .inference import InferenceConfig, LocalModel, ModelAutoscaling
from .loader import (
    StackSecrets,
    load_stack,
    parse_platform_config,
    plain_secret_lines,
    provider_region_lines,
    secret_keys_named_by,
    stack_name_lines,
)
from .namespaces import NamespaceConfig, NamespacesConfig
from .platform import PlatformConfig
from .runners import RunnersConfig
from .services import IngressConfig, MeshConfig, PkiConfig

__all__ = [
    "Arch",
    "AwsConfig",
    "ClientConfig",
    "CloudModel",
    "ClusterConfig",
    "ConfigError",
    "ConfigProblems",
    "DataLayerConfig",
    "EdgeConfig",
    "GpuClass",
    "GpuSharing",
    "InferenceConfig",
    "IngressConfig",
    "LanGpuHost",
    "LlmGatewayConfig",
    "LocalModel",
    "MeshConfig",
    "ModelAutoscaling",
    "NamespaceConfig",
    "NamespacesConfig",
    "Node",
    "ObservabilityConfig",
    "PkiConfig",
    "PlatformConfig",
    "Problem",
    "RouterConfig",
    "RunnersConfig",
    "StackSecrets",
    "VpaConfig",
    "WireGuardConfig",
    "load_stack",
    "parse_platform_config",
    "plain_secret_lines",
    "provider_region_lines",
    "secret_keys_named_by",
    "stack_name_lines",
]
