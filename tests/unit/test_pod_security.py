"""The Pod Security Standards checks of tools/checks/pod_security.py against upstream's rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tools.checks.pod_security import (
    Level,
    Violation,
    namespace_levels,
    pod_spec_of,
    violations,
)

RESTRICTED_SC: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def _container(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "img", "securityContext": copy.deepcopy(RESTRICTED_SC), **extra}


def restricted_pod() -> dict[str, Any]:
    """A Pod that passes restricted: every field the level requires is set."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {}},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "initContainers": [_container("init")],
            "containers": [_container("vllm", ports=[{"containerPort": 8000}])],
            "volumes": [
                {"name": "cache", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "c"}},
                {"name": "models", "persistentVolumeClaim": {"claimName": "m"}},
            ],
        },
    }


def deployment(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ns"},
        "spec": {"template": {"metadata": pod["metadata"], "spec": pod["spec"]}},
    }


def checks(obj: dict[str, Any], level: Level | str) -> set[str]:
    return {v.check for v in violations(obj, level)}


def fields(obj: dict[str, Any], level: Level | str, check: str) -> list[str]:
    return [v.field for v in violations(obj, level) if v.check == check]


# --- the valid pod and levels ---------------------------------------------------------------


@pytest.mark.parametrize("level", list(Level))
def test_valid_restricted_pod_passes_every_level(level: Level) -> None:
    assert violations(restricted_pod(), level) == []


def test_privileged_never_violates() -> None:
    pod = restricted_pod()
    pod["spec"]["hostNetwork"] = True
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    assert violations(pod, Level.PRIVILEGED) == []
    assert violations(pod, "privileged") == []
    assert checks(pod, "baseline") == {"hostNamespaces", "privileged"}


def test_level_accepts_strings_and_rejects_unknown() -> None:
    pod = restricted_pod()
    del pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"]
    assert checks(pod, "restricted") == {"allowPrivilegeEscalation"}
    with pytest.raises(ValueError):
        violations(pod, "strict")


def test_violation_carries_check_field_and_detail() -> None:
    pod = restricted_pod()
    pod["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = False
    [v] = violations(deployment(pod), Level.RESTRICTED)
    assert isinstance(v, Violation)
    assert v.check == "runAsNonRoot"
    assert v.field == "spec.template.spec.containers[vllm].securityContext.runAsNonRoot"
    assert "false" in v.detail


# --- locating the pod spec ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"]
)
def test_pod_spec_of_workloads(kind: str) -> None:
    pod = restricted_pod()
    obj = deployment(pod) | {"kind": kind}
    prefix, metadata, spec = pod_spec_of(obj) or ("", {}, {})
    assert prefix == "spec.template.spec"
    assert metadata is pod["metadata"]
    assert spec is pod["spec"]


def test_pod_spec_of_pod_podtemplate_and_cronjob() -> None:
    pod = restricted_pod()
    assert pod_spec_of(pod) == ("spec", pod["metadata"], pod["spec"])
    tmpl = {"kind": "PodTemplate", "template": {"metadata": {}, "spec": pod["spec"]}}
    assert pod_spec_of(tmpl) == ("template.spec", {}, pod["spec"])
    cron = {
        "kind": "CronJob",
        "spec": {"jobTemplate": {"spec": {"template": {"spec": pod["spec"]}}}},
    }
    assert pod_spec_of(cron) == ("spec.jobTemplate.spec.template.spec", {}, pod["spec"])
    # a built-in kind counts even when its template has no containers yet
    bare = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}}}}
    assert pod_spec_of(bare) == ("spec.jobTemplate.spec.template.spec", {}, {})


def test_pod_spec_of_custom_resource_and_objects_without_templates() -> None:
    pod = restricted_pod()
    cr = {"apiVersion": "x.io/v1", "kind": "Rollout", "spec": {"template": {"spec": pod["spec"]}}}
    assert pod_spec_of(cr) == ("spec.template.spec", {}, pod["spec"])
    # a custom resource whose spec.template is not a pod template
    assert pod_spec_of({"kind": "Thing", "spec": {"template": {"spec": {"x": 1}}}}) is None
    assert pod_spec_of({"kind": "ConfigMap", "data": {"a": "b"}}) is None
    assert pod_spec_of({"kind": "Deployment", "spec": {}}) is None
    assert violations({"kind": "Service", "spec": {"ports": []}}, "restricted") == []


def test_cronjob_nested_template_is_checked() -> None:
    pod = restricted_pod()
    pod["spec"]["containers"][0]["securityContext"]["privileged"] = True
    cron = {
        "kind": "CronJob",
        "metadata": {"name": "c"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": pod["spec"]}}}},
    }
    assert fields(cron, "baseline", "privileged") == [
        "spec.jobTemplate.spec.template.spec.containers[vllm].securityContext.privileged"
    ]


# --- baseline -------------------------------------------------------------------------------


def test_host_process_pod_and_container() -> None:
    pod = restricted_pod()
    pod["spec"]["securityContext"]["windowsOptions"] = {"hostProcess": True}
    pod["spec"]["initContainers"][0]["securityContext"]["windowsOptions"] = {"hostProcess": True}
    pod["spec"]["containers"][0]["securityContext"]["windowsOptions"] = {"hostProcess": False}
    assert fields(pod, "baseline", "windowsHostProcess") == [
        "spec.securityContext.windowsOptions.hostProcess",
        "spec.initContainers[init].securityContext.windowsOptions.hostProcess",
    ]


def test_host_namespaces() -> None:
    pod = restricted_pod()
    pod["spec"] |= {"hostNetwork": True, "hostPID": False, "hostIPC": True}
    assert fields(pod, "baseline", "hostNamespaces") == ["spec.hostNetwork", "spec.hostIPC"]


def test_baseline_capabilities_exact_names() -> None:
    pod = restricted_pod()
    c = pod["spec"]["containers"][0]
    # upstream compares strings exactly: allowed names pass, anything else fails
    c["securityContext"]["capabilities"]["add"] = ["CHOWN", "NET_BIND_SERVICE", "SYS_CHROOT"]
    assert checks(pod, "baseline") == set()
    for bad in ["NET_RAW", "SYS_ADMIN", "chown", "CAP_CHOWN", "cap_net_raw"]:
        c["securityContext"]["capabilities"]["add"] = ["CHOWN", bad]
        found = [v for v in violations(pod, "baseline") if v.check == "capabilities_baseline"]
        assert [v.field for v in found] == [
            "spec.containers[vllm].securityContext.capabilities.add"
        ], bad
        assert bad in found[0].detail


def test_host_path_volume() -> None:
    pod = restricted_pod()
    pod["spec"]["volumes"].append({"name": "dev", "hostPath": {"path": "/dev"}})
    assert fields(pod, "baseline", "hostPathVolumes") == ["spec.volumes[dev].hostPath"]
    # restricted reports it as restrictedVolumes instead (OverrideCheckIDs)
    assert checks(pod, "restricted") == {"restrictedVolumes"}


def test_host_port_zero_is_allowed_and_any_other_is_not() -> None:
    pod = restricted_pod()
    ports = pod["spec"]["containers"][0]["ports"]
    ports[0]["hostPort"] = 0
    assert violations(pod, "baseline") == []
    ports.append({"containerPort": 9000, "hostPort": 9000})
    [v] = violations(pod, "baseline")
    assert (v.check, v.field) == ("hostPorts", "spec.containers[vllm].ports[1].hostPort")
    assert "9000" in v.detail


def test_host_port_on_ephemeral_container() -> None:
    pod = restricted_pod()
    pod["spec"]["ephemeralContainers"] = [_container("dbg", ports=[{"hostPort": 80}])]
    assert fields(pod, "baseline", "hostPorts") == [
        "spec.ephemeralContainers[dbg].ports[0].hostPort"
    ]


def test_host_in_probes_and_lifecycle() -> None:
    pod = restricted_pod()
    c = pod["spec"]["containers"][0]
    c["livenessProbe"] = {"httpGet": {"path": "/", "port": 80, "host": "10.0.0.1"}}
    c["readinessProbe"] = {"tcpSocket": {"port": 80, "host": ""}}
    c["lifecycle"] = {"preStop": {"tcpSocket": {"port": 80, "host": "evil"}}}
    assert fields(pod, "baseline", "hostProbesAndHostLifecycle") == [
        "spec.containers[vllm].livenessProbe.httpGet.host",
        "spec.containers[vllm].lifecycle.preStop.tcpSocket.host",
    ]


def test_app_armor_fields_and_annotations() -> None:
    pod = restricted_pod()
    pod["spec"]["securityContext"]["appArmorProfile"] = {"type": "RuntimeDefault"}
    pod["spec"]["containers"][0]["securityContext"]["appArmorProfile"] = {"type": "Localhost"}
    pod["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/vllm": "localhost/prof",
        "container.apparmor.security.beta.kubernetes.io/init": "runtime/default",
    }
    assert violations(pod, "baseline") == []
    pod["spec"]["initContainers"][0]["securityContext"]["appArmorProfile"] = {"type": "Unconfined"}
    pod["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/x"] = (
        "unconfined"
    )
    assert fields(deployment(pod), "baseline", "appArmorProfile") == [
        "spec.template.spec.initContainers[init].securityContext.appArmorProfile.type",
        "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/x]",
    ]


def test_selinux_options() -> None:
    pod = restricted_pod()
    sc = pod["spec"]["containers"][0]["securityContext"]
    for allowed in ["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"]:
        sc["seLinuxOptions"] = {"type": allowed, "level": "s0:c1"}
        assert violations(pod, "baseline") == [], allowed
    sc["seLinuxOptions"] = {"type": "spc_t"}
    pod["spec"]["securityContext"]["seLinuxOptions"] = {"user": "system_u"}
    pod["spec"]["initContainers"][0]["securityContext"]["seLinuxOptions"] = {"role": "r"}
    assert fields(pod, "baseline", "seLinuxOptions") == [
        "spec.securityContext.seLinuxOptions",
        "spec.initContainers[init].securityContext.seLinuxOptions",
        "spec.containers[vllm].securityContext.seLinuxOptions",
    ]


def test_proc_mount_and_user_namespace_relief() -> None:
    pod = restricted_pod()
    pod["spec"]["containers"][0]["securityContext"]["procMount"] = "Default"
    assert violations(pod, "restricted") == []
    pod["spec"]["containers"][0]["securityContext"]["procMount"] = "Unmasked"
    assert checks(pod, "baseline") == {"procMount"}
    assert checks(pod, "restricted") == {"procMount_restricted"}
    pod["spec"]["hostUsers"] = False
    assert checks(pod, "baseline") == set()
    assert checks(pod, "restricted") == {"procMount_restricted"}


def test_seccomp_unconfined_on_ephemeral_container() -> None:
    pod = restricted_pod()
    eph = _container("debug")
    eph["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    pod["spec"]["ephemeralContainers"] = [eph]
    assert fields(pod, "baseline", "seccompProfile_baseline") == [
        "spec.ephemeralContainers[debug].securityContext.seccompProfile.type"
    ]
    assert fields(pod, "restricted", "seccompProfile_restricted") == [
        "spec.ephemeralContainers[debug].securityContext.seccompProfile.type"
    ]
    assert "seccompProfile_baseline" not in checks(pod, "restricted")


def test_seccomp_unconfined_at_pod_level_is_baseline_violation() -> None:
    pod = restricted_pod()
    pod["spec"]["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    assert fields(pod, "baseline", "seccompProfile_baseline") == [
        "spec.securityContext.seccompProfile.type"
    ]


def test_sysctls_safe_set() -> None:
    pod = restricted_pod()
    pod["spec"]["securityContext"]["sysctls"] = [
        {"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"},
        {"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"},  # safe since 1.32
        {"name": "kernel.msgmax", "value": "65536"},
        {"name": "net.ipv4.tcp_slow_start_after_idle", "value": "0"},  # safe only from 1.37
    ]
    assert fields(pod, "baseline", "sysctls") == [
        "spec.securityContext.sysctls[kernel.msgmax]",
        "spec.securityContext.sysctls[net.ipv4.tcp_slow_start_after_idle]",
    ]


# --- restricted -----------------------------------------------------------------------------


def test_restricted_volume_types() -> None:
    pod = restricted_pod()
    pod["spec"]["volumes"] += [
        {"name": "nfs", "nfs": {"server": "s", "path": "/"}},
        {"name": "img", "image": {"reference": "r"}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {}}},
        {"name": "plain"},  # no source: defaults to emptyDir
    ]
    assert violations(pod, "baseline") == []
    assert fields(pod, "restricted", "restrictedVolumes") == ["spec.volumes[nfs]"]


def test_missing_allow_privilege_escalation_under_restricted() -> None:
    pod = restricted_pod()
    del pod["spec"]["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"]
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    assert violations(pod, "baseline") == []
    assert fields(pod, "restricted", "allowPrivilegeEscalation") == [
        "spec.initContainers[init].securityContext.allowPrivilegeEscalation",
        "spec.containers[vllm].securityContext.allowPrivilegeEscalation",
    ]


def test_container_without_security_context_fails_restricted() -> None:
    pod = restricted_pod()
    pod["spec"]["containers"].append({"name": "side", "image": "img"})
    assert checks(pod, "restricted") == {"allowPrivilegeEscalation", "capabilities_restricted"}


def test_run_as_non_root_true_at_pod_but_false_in_init_container() -> None:
    pod = restricted_pod()
    pod["spec"]["initContainers"][0]["securityContext"]["runAsNonRoot"] = False
    assert fields(pod, "restricted", "runAsNonRoot") == [
        "spec.initContainers[init].securityContext.runAsNonRoot"
    ]


def test_run_as_non_root_on_every_container_instead_of_pod() -> None:
    pod = restricted_pod()
    del pod["spec"]["securityContext"]["runAsNonRoot"]
    pod["spec"]["initContainers"][0]["securityContext"]["runAsNonRoot"] = True
    assert fields(pod, "restricted", "runAsNonRoot") == [
        "spec.containers[vllm].securityContext.runAsNonRoot"
    ]
    pod["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = True
    assert violations(pod, "restricted") == []


def test_run_as_non_root_false_at_pod_level() -> None:
    pod = restricted_pod()
    pod["spec"]["securityContext"]["runAsNonRoot"] = False
    for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        c["securityContext"]["runAsNonRoot"] = True
    assert fields(pod, "restricted", "runAsNonRoot") == ["spec.securityContext.runAsNonRoot"]


def test_run_as_non_root_lists_explicit_and_implicit_offenders() -> None:
    pod = restricted_pod()
    del pod["spec"]["securityContext"]["runAsNonRoot"]
    pod["spec"]["initContainers"][0]["securityContext"]["runAsNonRoot"] = False
    assert fields(pod, "restricted", "runAsNonRoot") == [
        "spec.initContainers[init].securityContext.runAsNonRoot",
        "spec.containers[vllm].securityContext.runAsNonRoot",
    ]


def test_run_as_user_zero() -> None:
    pod = restricted_pod()
    pod["spec"]["securityContext"]["runAsUser"] = 0
    pod["spec"]["containers"][0]["securityContext"]["runAsUser"] = 0
    pod["spec"]["initContainers"][0]["securityContext"]["runAsUser"] = 1
    assert fields(pod, "restricted", "runAsUser") == [
        "spec.securityContext.runAsUser",
        "spec.containers[vllm].securityContext.runAsUser",
    ]
    assert violations(pod, "baseline") == []


def test_user_namespace_relieves_run_as_checks() -> None:
    pod = restricted_pod()
    pod["spec"]["securityContext"] |= {"runAsNonRoot": False, "runAsUser": 0}
    assert checks(pod, "restricted") == {"runAsNonRoot", "runAsUser"}
    pod["spec"]["hostUsers"] = False
    assert violations(pod, "restricted") == []


def test_seccomp_must_be_set_at_pod_or_every_container() -> None:
    pod = restricted_pod()
    del pod["spec"]["securityContext"]["seccompProfile"]
    assert violations(pod, "baseline") == []
    assert fields(pod, "restricted", "seccompProfile_restricted") == [
        "spec.initContainers[init].securityContext.seccompProfile.type",
        "spec.containers[vllm].securityContext.seccompProfile.type",
    ]
    for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        c["securityContext"]["seccompProfile"] = {"type": "Localhost", "localhostProfile": "p"}
    assert violations(pod, "restricted") == []


def test_seccomp_lists_explicit_and_implicit_offenders() -> None:
    pod = restricted_pod()
    del pod["spec"]["securityContext"]["seccompProfile"]
    pod["spec"]["containers"][0]["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    found = [v for v in violations(pod, "restricted") if v.check == "seccompProfile_restricted"]
    assert [v.field for v in found] == [
        "spec.containers[vllm].securityContext.seccompProfile.type",
        "spec.initContainers[init].securityContext.seccompProfile.type",
    ]
    assert "Unconfined" in found[0].detail


def test_restricted_capabilities() -> None:
    pod = restricted_pod()
    sc = pod["spec"]["containers"][0]["securityContext"]
    sc["capabilities"] = {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert violations(pod, "restricted") == []
    sc["capabilities"] = {"drop": ["all"], "add": ["net_bind_service", "CAP_NET_BIND_SERVICE"]}
    found = [v for v in violations(pod, "restricted") if v.check == "capabilities_restricted"]
    assert [v.field for v in found] == [
        "spec.containers[vllm].securityContext.capabilities.drop",
        "spec.containers[vllm].securityContext.capabilities.add",
    ]
    # capabilities_restricted overrides capabilities_baseline under restricted
    sc["capabilities"] = {"drop": ["ALL"], "add": ["SYS_ADMIN"]}
    assert checks(pod, "restricted") == {"capabilities_restricted"}
    assert checks(pod, "baseline") == {"capabilities_baseline"}


def test_windows_pod_exemptions() -> None:
    pod = restricted_pod()
    pod["spec"]["os"] = {"name": "windows"}
    del pod["spec"]["securityContext"]["seccompProfile"]
    for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        c["securityContext"] = {"windowsOptions": {"runAsUserName": "ContainerUser"}}
    assert violations(pod, "restricted") == []
    # runAsNonRoot is not exempt for Windows pods
    del pod["spec"]["securityContext"]["runAsNonRoot"]
    assert checks(pod, "restricted") == {"runAsNonRoot"}
    # and a Linux pod with the same containers fails the exempted checks
    pod["spec"]["os"] = {"name": "linux"}
    assert checks(pod, "restricted") == {
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "runAsNonRoot",
        "seccompProfile_restricted",
    }


# --- namespaces -----------------------------------------------------------------------------


def test_namespace_levels() -> None:
    label = "pod-security.kubernetes.io/enforce"
    objects = [
        {"kind": "Namespace", "metadata": {"name": "a", "labels": {label: "restricted"}}},
        {"kind": "Namespace", "metadata": {"name": "b", "labels": {label: "baseline"}}},
        {"kind": "Namespace", "metadata": {"name": "c", "labels": {"other": "x"}}},
        {"kind": "Namespace", "metadata": {"name": "d"}},
        {"kind": "Namespace", "metadata": {"name": "e", "labels": {label: "bogus"}}},
        {"kind": "ConfigMap", "metadata": {"name": "f", "labels": {label: "restricted"}}},
    ]
    assert namespace_levels(objects) == {
        "a": Level.RESTRICTED,
        "b": Level.BASELINE,
        "c": Level.PRIVILEGED,
        "d": Level.PRIVILEGED,
        "e": Level.RESTRICTED,
    }
