"""Kubernetes Pod Security Standards (PSS) admission checks, in pure Python.

Implements the checks that the API server's PodSecurity admission plugin applies for the
``latest`` policy version of Kubernetes v1.36, after kubernetes/pod-security-admission at tag
v0.36.2 (``policy/check_*.go``; the prose version is kubernetes/website
``content/en/docs/concepts/security/pod-security-standards.md``).

Behaviour that follows upstream and is easy to get wrong:

* Container checks visit ``initContainers``, ``containers`` and ``ephemeralContainers``
  (``policy/visitor.go``).
* String values are compared exactly, as upstream does: ``net_raw`` or ``CAP_SYS_ADMIN`` in
  ``capabilities.add`` are not in the baseline allow-list, and ``drop: [all]`` does not count as
  dropping ``ALL``.
* Restricted runs every baseline check, except the ones a restricted check overrides
  (``OverrideCheckIDs``): ``restrictedVolumes`` replaces ``hostPathVolumes``,
  ``capabilities_restricted`` replaces ``capabilities_baseline``, ``seccompProfile_restricted``
  replaces ``seccompProfile_baseline`` and ``procMount_restricted`` replaces ``procMount``.
* Pods with ``spec.os.name: windows`` skip ``allowPrivilegeEscalation``,
  ``capabilities_restricted`` and ``seccompProfile_restricted`` (1.25+); pods with
  ``spec.hostUsers: false`` (user namespaces) skip ``runAsNonRoot``, ``runAsUser`` and the
  baseline ``procMount`` (1.35+).
* Upstream returns one result per check; here each offending field is its own Violation, and
  ``runAsNonRoot``/``seccompProfile_restricted`` list the containers that leave the field unset
  even when another one sets a forbidden value (upstream's message names only the latter).
* The 1.36 safe sysctls include ``net.ipv4.tcp_rmem``/``tcp_wmem`` (added for 1.32).

Not modelled: the ``pod-security.kubernetes.io/enforce-version`` label (always ``latest``),
namespace/user/runtime-class exemptions, and API defaulting of the object (a volume without a
source is treated as the ``emptyDir`` it defaults to). The API server *enforces* only on Pods;
for workload objects it evaluates the same pod template but only warns and audits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.cluster.namespaces import PodSecurity

Level = PodSecurity
"""A Pod Security Standards level, as written in a namespace label (the cluster base's)."""


@dataclass(frozen=True)
class Violation:
    """One field that a PSS check forbids."""

    check: str
    field: str
    detail: str


ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"

_Obj = Mapping[str, Any]
_CheckFn = Callable[["_Pod"], list[Violation]]

# --- locating the pod spec --------------------------------------------------------------------

_TEMPLATE_KINDS = {
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
}


def _mapping(value: Any) -> _Obj | None:
    return value if isinstance(value, Mapping) else None


def _from_template(template: Any, prefix: str) -> tuple[str, _Obj, _Obj] | None:
    tmpl = _mapping(template)
    if tmpl is None:
        return None
    spec = _mapping(tmpl.get("spec"))
    if spec is None:
        return None
    return f"{prefix}.spec", _mapping(tmpl.get("metadata")) or {}, spec


def _job_template(spec: _Obj) -> Any:
    job_template = _mapping(spec.get("jobTemplate")) or {}
    return (_mapping(job_template.get("spec")) or {}).get("template")


def pod_spec_of(obj: _Obj) -> tuple[str, _Obj, _Obj] | None:
    """Return (path of the pod spec, pod metadata, pod spec), or None without a pod template.

    Mirrors admission/admission.go DefaultPodSpecExtractor for the built-in kinds; any other
    object (a custom resource) counts when ``spec.template.spec`` or
    ``spec.jobTemplate.spec.template.spec`` holds a ``containers`` list.
    """
    kind = obj.get("kind")
    spec = _mapping(obj.get("spec")) or {}
    if kind == "Pod":
        return "spec", _mapping(obj.get("metadata")) or {}, spec
    if kind == "PodTemplate":
        return _from_template(obj.get("template"), "template")
    if kind == "CronJob":
        return _from_template(_job_template(spec), "spec.jobTemplate.spec.template")
    if kind in _TEMPLATE_KINDS:
        return _from_template(spec.get("template"), "spec.template")
    for found in (
        _from_template(spec.get("template"), "spec.template"),
        _from_template(_job_template(spec), "spec.jobTemplate.spec.template"),
    ):
        if found is not None and isinstance(found[2].get("containers"), list):
            return found
    return None


# --- a pod under evaluation -------------------------------------------------------------------


@dataclass(frozen=True)
class _Container:
    path: str
    body: _Obj

    @property
    def name(self) -> str:
        return str(self.body.get("name", ""))

    @property
    def security(self) -> _Obj:
        return _mapping(self.body.get("securityContext")) or {}


@dataclass(frozen=True)
class _Pod:
    prefix: str
    metadata: _Obj
    spec: _Obj

    @property
    def metadata_path(self) -> str:
        return self.prefix.removesuffix("spec") + "metadata"

    @property
    def security(self) -> _Obj:
        return _mapping(self.spec.get("securityContext")) or {}

    @property
    def security_path(self) -> str:
        return f"{self.prefix}.securityContext"

    def containers(self) -> Iterator[_Container]:
        """Every container, in the order of policy/visitor.go visitContainers."""
        for key in ("initContainers", "containers", "ephemeralContainers"):
            for index, body in enumerate(self.spec.get(key) or []):
                if not isinstance(body, Mapping):
                    continue
                label = body.get("name", index)
                yield _Container(f"{self.prefix}.{key}[{label}]", body)

    @property
    def is_windows(self) -> bool:
        return (_mapping(self.spec.get("os")) or {}).get("name") == "windows"

    @property
    def in_user_namespace(self) -> bool:
        """policy/helpers.go relaxPolicyForUserNamespacePod: hostUsers explicitly false."""
        return self.spec.get("hostUsers") is False


def _is_zero(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == 0


def _sub(body: _Obj, *keys: str) -> _Obj | None:
    node: _Obj | None = body
    for key in keys:
        if node is None:
            return None
        node = _mapping(node.get(key))
    return node


# --- baseline checks --------------------------------------------------------------------------


def _windows_host_process(pod: _Pod) -> list[Violation]:
    # policy/check_windowsHostProcess.go
    found = []
    setters = [(pod.security_path, pod.security)]
    setters += [(f"{c.path}.securityContext", c.security) for c in pod.containers()]
    for path, security in setters:
        if (_sub(security, "windowsOptions") or {}).get("hostProcess") is True:
            found.append(
                Violation(
                    "windowsHostProcess",
                    f"{path}.windowsOptions.hostProcess",
                    "hostProcess=true; baseline allows only unset or false",
                )
            )
    return found


def _host_namespaces(pod: _Pod) -> list[Violation]:
    # policy/check_hostNamespaces.go
    return [
        Violation(
            "hostNamespaces",
            f"{pod.prefix}.{key}",
            f"{key}=true; baseline allows only unset or false",
        )
        for key in ("hostNetwork", "hostPID", "hostIPC")
        if pod.spec.get(key) is True
    ]


def _privileged(pod: _Pod) -> list[Violation]:
    # policy/check_privileged.go
    return [
        Violation(
            "privileged",
            f"{c.path}.securityContext.privileged",
            f"container {c.name!r} sets privileged=true; baseline allows only unset or false",
        )
        for c in pod.containers()
        if c.security.get("privileged") is True
    ]


BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def _added_capabilities(container: _Container) -> list[Any]:
    return list((_sub(container.security, "capabilities") or {}).get("add") or [])


def _capabilities_baseline(pod: _Pod) -> list[Violation]:
    # policy/check_capabilities_baseline.go (exact, case-sensitive names)
    found = []
    for c in pod.containers():
        bad = sorted(
            {str(cap) for cap in _added_capabilities(c) if cap not in BASELINE_CAPABILITIES}
        )
        if bad:
            found.append(
                Violation(
                    "capabilities_baseline",
                    f"{c.path}.securityContext.capabilities.add",
                    f"container {c.name!r} adds {bad}; baseline allows only "
                    f"{sorted(BASELINE_CAPABILITIES)}",
                )
            )
    return found


def _volumes(pod: _Pod) -> Iterator[tuple[str, _Obj]]:
    for index, volume in enumerate(pod.spec.get("volumes") or []):
        if isinstance(volume, Mapping):
            yield f"{pod.prefix}.volumes[{volume.get('name', index)}]", volume


def _host_path_volumes(pod: _Pod) -> list[Violation]:
    # policy/check_hostPathVolumes.go
    return [
        Violation("hostPathVolumes", f"{path}.hostPath", "hostPath volume; baseline forbids it")
        for path, volume in _volumes(pod)
        if volume.get("hostPath") is not None
    ]


def _host_ports(pod: _Pod) -> list[Violation]:
    # policy/check_hostPorts.go
    found = []
    for c in pod.containers():
        for index, port in enumerate(c.body.get("ports") or []):
            host_port = (_mapping(port) or {}).get("hostPort")
            if host_port is not None and not _is_zero(host_port):
                found.append(
                    Violation(
                        "hostPorts",
                        f"{c.path}.ports[{index}].hostPort",
                        f"container {c.name!r} uses hostPort {host_port}; "
                        "baseline allows only unset or 0",
                    )
                )
    return found


_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _apparmor_annotation_allowed(value: Any) -> bool:
    text = str(value)
    return text in ("", "runtime/default") or text.startswith("localhost/")


def _app_armor_profile(pod: _Pod) -> list[Violation]:
    # policy/check_appArmorProfile.go
    found = []
    setters = [(pod.security_path, pod.security)]
    setters += [(f"{c.path}.securityContext", c.security) for c in pod.containers()]
    for path, security in setters:
        profile = _sub(security, "appArmorProfile")
        if profile is not None and profile.get("type") not in _APPARMOR_TYPES:
            found.append(
                Violation(
                    "appArmorProfile",
                    f"{path}.appArmorProfile.type",
                    f"AppArmor profile type {profile.get('type')!r}; baseline allows only "
                    "RuntimeDefault, Localhost or unset",
                )
            )
    annotations = _mapping(pod.metadata.get("annotations")) or {}
    for key in sorted(annotations):
        value = annotations[key]
        if str(key).startswith(_APPARMOR_ANNOTATION_PREFIX) and not _apparmor_annotation_allowed(
            value
        ):
            found.append(
                Violation(
                    "appArmorProfile",
                    f"{pod.metadata_path}.annotations[{key}]",
                    f"AppArmor annotation {value!r}; baseline allows only runtime/default, "
                    "localhost/*, empty or unset",
                )
            )
    return found


SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)


def _selinux_problems(options: _Obj) -> list[str]:
    problems = []
    if options.get("type", "") not in SELINUX_TYPES:
        problems.append(f"type {options.get('type')!r}")
    problems += [f"{key} set" for key in ("user", "role") if options.get(key)]
    return problems


def _se_linux_options(pod: _Pod) -> list[Violation]:
    # policy/check_seLinuxOptions.go (1.31+ type list)
    found = []
    setters = [(pod.security_path, pod.security)]
    setters += [(f"{c.path}.securityContext", c.security) for c in pod.containers()]
    for path, security in setters:
        options = _sub(security, "seLinuxOptions")
        problems = _selinux_problems(options) if options is not None else []
        if problems:
            found.append(
                Violation(
                    "seLinuxOptions",
                    f"{path}.seLinuxOptions",
                    f"{', '.join(problems)}; baseline allows type in {sorted(SELINUX_TYPES)} "
                    "and no user or role",
                )
            )
    return found


def _proc_mount_violations(pod: _Pod, check: str) -> list[Violation]:
    return [
        Violation(
            check,
            f"{c.path}.securityContext.procMount",
            f"container {c.name!r} sets procMount={c.security['procMount']!r}; "
            "only Default or unset is allowed",
        )
        for c in pod.containers()
        if c.security.get("procMount") not in (None, "Default")
    ]


def _proc_mount_baseline(pod: _Pod) -> list[Violation]:
    # policy/check_procMount_baseline.go (1.35+: any value when hostUsers is false)
    if pod.in_user_namespace:
        return []
    return _proc_mount_violations(pod, "procMount")


_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _seccomp_setters(pod: _Pod) -> Iterator[tuple[str, str, _Obj | None]]:
    """(owner, path of securityContext, seccompProfile or None) for the pod and each container."""
    yield "pod", pod.security_path, _sub(pod.security, "seccompProfile")
    for c in pod.containers():
        yield (
            f"container {c.name!r}",
            f"{c.path}.securityContext",
            _sub(c.security, "seccompProfile"),
        )


def _bad_seccomp(check: str, level: str, owner: str, path: str, profile: _Obj) -> Violation:
    return Violation(
        check,
        f"{path}.seccompProfile.type",
        f"{owner} sets seccompProfile.type={profile.get('type')!r}; {level} allows only "
        "RuntimeDefault or Localhost",
    )


def _seccomp_profile_baseline(pod: _Pod) -> list[Violation]:
    # policy/check_seccompProfile_baseline.go (1.19+: fields, not the alpha annotations)
    return [
        _bad_seccomp("seccompProfile_baseline", "baseline", owner, path, profile)
        for owner, path, profile in _seccomp_setters(pod)
        if profile is not None and profile.get("type") not in _SECCOMP_TYPES
    ]


SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)


def _sysctls(pod: _Pod) -> list[Violation]:
    # policy/check_sysctls.go (1.32+ safe set)
    found = []
    for index, sysctl in enumerate(pod.security.get("sysctls") or []):
        name = (_mapping(sysctl) or {}).get("name")
        if name not in SAFE_SYSCTLS:
            found.append(
                Violation(
                    "sysctls",
                    f"{pod.security_path}.sysctls[{name if name is not None else index}]",
                    f"sysctl {name!r} is not in the safe set baseline allows",
                )
            )
    return found


_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_LIFECYCLE_HANDLERS = ("postStart", "preStop")


def _handler_hosts(handler: _Obj | None, path: str) -> Iterator[tuple[str, Any]]:
    for action in ("httpGet", "tcpSocket"):
        host = (_sub(handler or {}, action) or {}).get("host")
        if host:
            yield f"{path}.{action}.host", host


def _host_probes_and_host_lifecycle(pod: _Pod) -> list[Violation]:
    # policy/check_hostProbesAndhostLifecycle.go (1.34+)
    found = []
    for c in pod.containers():
        handlers = [(_sub(c.body, probe), f"{c.path}.{probe}") for probe in _PROBES]
        handlers += [
            (_sub(c.body, "lifecycle", hook), f"{c.path}.lifecycle.{hook}")
            for hook in _LIFECYCLE_HANDLERS
        ]
        for handler, path in handlers:
            for field, host in _handler_hosts(handler, path):
                found.append(
                    Violation(
                        "hostProbesAndHostLifecycle",
                        field,
                        f"container {c.name!r} sets host={host!r}; baseline allows only unset or ''",
                    )
                )
    return found


# --- restricted checks ------------------------------------------------------------------------

RESTRICTED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)


def _restricted_volumes(pod: _Pod) -> list[Violation]:
    # policy/check_restrictedVolumes.go (overrides hostPathVolumes)
    found = []
    for path, volume in _volumes(pod):
        sources = {key for key, value in volume.items() if key != "name" and value is not None}
        if not sources or sources & RESTRICTED_VOLUME_SOURCES:
            continue  # a volume without a source defaults to emptyDir
        kinds = ", ".join(sorted(sources))
        found.append(
            Violation(
                "restrictedVolumes",
                path,
                f"volume type {kinds}; restricted allows only {sorted(RESTRICTED_VOLUME_SOURCES)}",
            )
        )
    return found


def _allow_privilege_escalation(pod: _Pod) -> list[Violation]:
    # policy/check_allowPrivilegeEscalation.go (1.25+: Windows pods exempt)
    if pod.is_windows:
        return []
    return [
        Violation(
            "allowPrivilegeEscalation",
            f"{c.path}.securityContext.allowPrivilegeEscalation",
            f"container {c.name!r} has allowPrivilegeEscalation="
            f"{c.security.get('allowPrivilegeEscalation')!r}; restricted requires false",
        )
        for c in pod.containers()
        if c.security.get("allowPrivilegeEscalation") is not False
    ]


def _run_as_non_root(pod: _Pod) -> list[Violation]:
    # policy/check_runAsNonRoot.go (1.35+: pods with hostUsers false exempt)
    if pod.in_user_namespace:
        return []
    field = "runAsNonRoot"
    pod_value = pod.security.get(field)
    explicit: list[Violation] = []
    if pod_value is False:
        explicit.append(
            Violation(field, f"{pod.security_path}.{field}", "pod sets runAsNonRoot=false")
        )
    implicit: list[Violation] = []
    for c in pod.containers():
        value = c.security.get(field)
        path = f"{c.path}.securityContext.{field}"
        if value is False:
            explicit.append(Violation(field, path, f"container {c.name!r} sets runAsNonRoot=false"))
        elif value is None and pod_value is not True:
            implicit.append(
                Violation(
                    field,
                    path,
                    f"container {c.name!r} leaves runAsNonRoot unset and the pod does not set "
                    "it true; restricted requires true at pod level or on every container",
                )
            )
    # upstream's message names only the explicit setters when there are any; every field is listed
    # here, so that fixing the reported ones leaves nothing hidden
    return explicit + implicit


def _run_as_user(pod: _Pod) -> list[Violation]:
    # policy/check_runAsUser.go (1.35+: pods with hostUsers false exempt)
    if pod.in_user_namespace:
        return []
    setters = [("pod", pod.security_path, pod.security)]
    setters += [
        (f"container {c.name!r}", f"{c.path}.securityContext", c.security) for c in pod.containers()
    ]
    return [
        Violation(
            "runAsUser", f"{path}.runAsUser", f"{owner} sets runAsUser=0; restricted forbids it"
        )
        for owner, path, security in setters
        if _is_zero(security.get("runAsUser"))
    ]


def _seccomp_profile_restricted(pod: _Pod) -> list[Violation]:
    # policy/check_seccompProfile_restricted.go (overrides seccompProfile_baseline;
    # 1.25+: Windows pods exempt)
    if pod.is_windows:
        return []
    check = "seccompProfile_restricted"
    setters = list(_seccomp_setters(pod))
    pod_profile = setters[0][2]
    pod_valid = pod_profile is not None and pod_profile.get("type") in _SECCOMP_TYPES
    explicit = [
        _bad_seccomp(check, "restricted", owner, path, profile)
        for owner, path, profile in setters
        if profile is not None and profile.get("type") not in _SECCOMP_TYPES
    ]
    if pod_valid:
        return explicit
    return explicit + [
        Violation(
            check,
            f"{path}.seccompProfile.type",
            f"{owner} leaves seccompProfile unset and the pod sets none; restricted requires "
            "RuntimeDefault or Localhost at pod level or on every container",
        )
        for owner, path, profile in setters[1:]
        if profile is None
    ]


def _capabilities_restricted(pod: _Pod) -> list[Violation]:
    # policy/check_capabilities_restricted.go (overrides capabilities_baseline;
    # 1.25+: Windows pods exempt)
    if pod.is_windows:
        return []
    found = []
    for c in pod.containers():
        capabilities = _sub(c.security, "capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(
                Violation(
                    "capabilities_restricted",
                    f"{c.path}.securityContext.capabilities.drop",
                    f"container {c.name!r} drops {list(capabilities.get('drop') or [])}; "
                    'restricted requires drop to include "ALL"',
                )
            )
        bad = sorted({str(cap) for cap in _added_capabilities(c) if cap != "NET_BIND_SERVICE"})
        if bad:
            found.append(
                Violation(
                    "capabilities_restricted",
                    f"{c.path}.securityContext.capabilities.add",
                    f"container {c.name!r} adds {bad}; restricted allows only NET_BIND_SERVICE",
                )
            )
    return found


def _proc_mount_restricted(pod: _Pod) -> list[Violation]:
    # policy/check_procMount_restricted.go (1.35+, overrides procMount; no user-namespace relief)
    return _proc_mount_violations(pod, "procMount_restricted")


# --- registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Check:
    id: str
    level: Level
    run: _CheckFn
    overrides: tuple[str, ...] = ()


# policy/registry.go order does not matter for the verdict; this is the order of the docs page.
CHECKS: Sequence[_Check] = (
    _Check("windowsHostProcess", Level.BASELINE, _windows_host_process),
    _Check("hostNamespaces", Level.BASELINE, _host_namespaces),
    _Check("privileged", Level.BASELINE, _privileged),
    _Check("capabilities_baseline", Level.BASELINE, _capabilities_baseline),
    _Check("hostPathVolumes", Level.BASELINE, _host_path_volumes),
    _Check("hostPorts", Level.BASELINE, _host_ports),
    _Check("hostProbesAndHostLifecycle", Level.BASELINE, _host_probes_and_host_lifecycle),
    _Check("appArmorProfile", Level.BASELINE, _app_armor_profile),
    _Check("seLinuxOptions", Level.BASELINE, _se_linux_options),
    _Check("procMount", Level.BASELINE, _proc_mount_baseline),
    _Check("seccompProfile_baseline", Level.BASELINE, _seccomp_profile_baseline),
    _Check("sysctls", Level.BASELINE, _sysctls),
    _Check("restrictedVolumes", Level.RESTRICTED, _restricted_volumes, ("hostPathVolumes",)),
    _Check("allowPrivilegeEscalation", Level.RESTRICTED, _allow_privilege_escalation),
    _Check("runAsNonRoot", Level.RESTRICTED, _run_as_non_root),
    _Check("runAsUser", Level.RESTRICTED, _run_as_user),
    _Check(
        "seccompProfile_restricted",
        Level.RESTRICTED,
        _seccomp_profile_restricted,
        ("seccompProfile_baseline",),
    ),
    _Check(
        "capabilities_restricted",
        Level.RESTRICTED,
        _capabilities_restricted,
        ("capabilities_baseline",),
    ),
    _Check("procMount_restricted", Level.RESTRICTED, _proc_mount_restricted, ("procMount",)),
)


def _checks_for(level: Level) -> list[_Check]:
    if level == Level.PRIVILEGED:
        return []
    chosen = [c for c in CHECKS if c.level == Level.BASELINE or level == Level.RESTRICTED]
    overridden = {o for c in chosen for o in c.overrides}
    return [c for c in chosen if c.id not in overridden]


def violations(obj: _Obj, level: Level | str) -> list[Violation]:
    """Every field of obj's pod template that the PSS level forbids; [] without a template."""
    checks = _checks_for(Level(level))
    found = pod_spec_of(obj)
    if not checks or found is None:
        return []
    pod = _Pod(*found)
    return [v for check in checks for v in check.run(pod)]


def namespace_levels(objects: Iterable[_Obj]) -> dict[str, Level]:
    """The enforce level of each Namespace among objects.

    A missing label means privileged (the default of an unconfigured API server); a label
    value that is not a level evaluates as restricted, as api/helpers.go ParseLevel does.
    """
    levels: dict[str, Level] = {}
    for obj in objects:
        if obj.get("kind") != "Namespace":
            continue
        metadata = _mapping(obj.get("metadata")) or {}
        labels = _mapping(metadata.get("labels")) or {}
        value = labels.get(ENFORCE_LABEL)
        if value is None:
            level = Level.PRIVILEGED
        else:
            try:
                level = Level(value)
            except ValueError:
                level = Level.RESTRICTED
        levels[str(metadata.get("name", ""))] = level
    return levels
