"""LanWorkstations: the model servers of LAN GPU hosts, rendered for every host and
installed over SSH on `managed` ones.

For every LAN GPU host the Compose file (`lan_compose.compose_yaml`) is an artifact,
`files/lan/<host>/compose.yaml`. For a host with `managed: true` (bootstrap mode) its
scripts (`lan_scripts`) are artifacts too, and run through pulumi-command, as the k3s
nodes' are: `<name>-<host>-preflight` (checked before anything changes),
`<name>-<host>-install` (re-run whenever the Compose file changes; it writes only what
differs and lets Compose recreate only the changed services; a gated model's token
reaches it on stdin), and `<name>-<host>-uninstall` (does nothing on create; its delete
stops the services), which ignores connection changes and is protected in prod, for the
reasons given in `k3s.py`.

Providers: pulumi-command needs none.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.cluster import lan_scripts
from components.cluster.k3s import ssh_connection
from components.cluster.lan_compose import compose_yaml
from components.cluster.scripts import command_line
from components.config import LanGpuHost, PlatformConfig

INSTALL_TIMEOUT = "20m"
"""Writing the files and `docker compose up -d`, which pulls the images first."""


def host_settings(config: PlatformConfig, host_name: str) -> lan_scripts.HostSettings:
    """The typed settings the scripts of one LAN host are rendered from (pure)."""
    host = config.cluster.lan_gpu_hosts[host_name]
    return lan_scripts.HostSettings(
        host_name=host_name,
        address=str(host.address),
        gpu_count=host.gpu_count,
        install_dir=host.install_dir,
        compose_text=compose_yaml(config, host_name),
        token_on_stdin=needs_token(config, host_name),
    )


def needs_token(config: PlatformConfig, host_name: str) -> bool:
    """Whether a model of the host is gated (its server needs the Hugging Face token)."""
    return any(m.gated for m in config.lan_models(host_name).values())


def host_artifacts(config: PlatformConfig, host_name: str) -> dict[str, str]:
    """A host's files under `files/`: the Compose file, and the scripts of a managed host."""
    settings = host_settings(config, host_name)
    files = {f"lan/{host_name}/compose.yaml": settings.compose_text}
    if config.cluster.lan_gpu_hosts[host_name].managed:
        files[f"lan/{host_name}/preflight.sh"] = lan_scripts.preflight_script(settings)
        files[f"lan/{host_name}/install.sh"] = lan_scripts.install_script(settings)
        files[f"lan/{host_name}/uninstall.sh"] = lan_scripts.uninstall_script(settings)
    return files


@dataclass(frozen=True, kw_only=True)
class LanWorkstationsArgs:
    """Inputs of the LAN workstations."""

    config: PlatformConfig
    ssh_private_key: pulumi.Output[str] | None = None
    """Secret SSH key reaching the managed hosts (bootstrap mode)."""
    huggingface_token: pulumi.Output[str] | None = None
    """Secret token for the gated models of managed hosts."""
    protect: bool = False
    """Protect each managed host's uninstall resource (prod)."""


class LanWorkstations(pulumi.ComponentResource):
    """The Compose file of each LAN GPU host; installed over SSH where `managed`."""

    artifacts: dict[str, pulumi.Output[str]]
    installs: list[pulumi.Resource]

    def __init__(
        self, name: str, args: LanWorkstationsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("llm-platform:cluster:LanWorkstations", name, None, opts)
        config = args.config
        self.artifacts = {}
        self.installs = []
        for host_name, host in sorted(config.cluster.lan_gpu_hosts.items()):
            files = host_artifacts(config, host_name)
            self.artifacts.update(
                {path: pulumi.Output.from_input(text) for path, text in files.items()}
            )
            if host.managed:
                self._managed(name, host_name, host, args)
        self.register_outputs({"artifacts": sorted(self.artifacts)})

    def _managed(
        self, name: str, host_name: str, host: LanGpuHost, args: LanWorkstationsArgs
    ) -> None:
        if args.ssh_private_key is None:
            raise ValueError("LanWorkstations: managed hosts need the ssh_private_key secret")
        settings = host_settings(args.config, host_name)
        token: pulumi.Output[str] | None = None
        if settings.token_on_stdin:
            if args.huggingface_token is None:
                raise ValueError("LanWorkstations: gated models need the huggingface_token")
            token = pulumi.Output.secret(args.huggingface_token)
        key: pulumi.Output[str] = pulumi.Output.secret(args.ssh_private_key)
        connection = ssh_connection(host, key)
        preflight = command.remote.Command(
            f"{name}-{host_name}-preflight",
            connection=connection,
            create=command_line(lan_scripts.preflight_script(settings), sudo=False),
            opts=pulumi.ResourceOptions(parent=self),
        )
        script = command_line(lan_scripts.install_script(settings), sudo=True)
        install = command.remote.Command(
            f"{name}-{host_name}-install",
            connection=connection,
            create=script,
            update=script,
            stdin=token,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[preflight],
                custom_timeouts=pulumi.CustomTimeouts(
                    create=INSTALL_TIMEOUT, update=INSTALL_TIMEOUT
                ),
            ),
        )
        command.remote.Command(
            f"{name}-{host_name}-uninstall",
            connection=connection,
            create=":",
            delete=command_line(lan_scripts.uninstall_script(settings), sudo=True),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[install],
                protect=args.protect,
                ignore_changes=["connection"],
            ),
        )
        self.installs.append(install)
