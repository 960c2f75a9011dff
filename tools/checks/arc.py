"""The pods Actions Runner Controller makes from an `AutoscalingRunnerSet`, for the checks.

ARC (gha-runner-scale-set 0.14.2) turns each `AutoscalingRunnerSet` into:

* one listener pod, in the *controller's* namespace (`autoscalingrunnerset_controller.go`:
  the listener is created in `ControllerNamespace`), built by `resourcebuilder.go`
  `newScaleSetListenerPod`: container `listener` running the controller's own image
  (`CONTROLLER_MANAGER_CONTAINER_IMAGE`), node selector `kubernetes.io/os: linux`,
  `restartPolicy: Never`; then `mergeListenerPodWithTemplate` applies the set's
  `listenerTemplate`: the pod's security context, node selector and tolerations replace
  the defaults, and a template container named `listener` gives the listener its
  security context and resources;
* up to `maxRunners` runner pods (at least `minRunners`), in the set's namespace, from its
  `spec.template` as the chart rendered it.

Pure functions over plain object dicts, as the render writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Obj = Mapping[str, Any]

CONTROLLER_PART_OF = "gha-rs-controller"
"""`app.kubernetes.io/part-of` of the controller's pods (controller chart deployment.yaml)."""
IMAGE_ENV = "CONTROLLER_MANAGER_CONTAINER_IMAGE"
LISTENER = "listener"


def is_runner_set(obj: Obj) -> bool:
    """Whether `obj` is an ARC `AutoscalingRunnerSet`."""
    return obj.get("kind") == "AutoscalingRunnerSet" and str(obj.get("apiVersion", "")).startswith(
        "actions.github.com/"
    )


def _controller(objects: Iterable[Obj]) -> Obj | None:
    for obj in objects:
        template = (obj.get("spec") or {}).get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if obj.get("kind") == "Deployment" and labels.get("app.kubernetes.io/part-of") == (
            CONTROLLER_PART_OF
        ):
            return obj
    return None


def controller_namespace(objects: Iterable[Obj]) -> str | None:
    """Where the controller runs, so where the listeners run."""
    controller = _controller(objects)
    return None if controller is None else str(controller["metadata"].get("namespace"))


def controller_image(objects: Iterable[Obj]) -> str:
    """The image the controller gives its listeners."""
    controller = _controller(objects)
    containers = ((controller or {}).get("spec") or {}).get("template", {}).get("spec", {})
    for container in containers.get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") == IMAGE_ENV:
                return str(env.get("value", ""))
    return ""


def listener_pod(runner_set: Obj, *, namespace: str, image: str) -> dict[str, Any]:
    """The listener pod of a runner set, as the controller builds and merges it."""
    name = str(runner_set["metadata"]["name"])
    spec = runner_set.get("spec") or {}
    template = (spec.get("listenerTemplate") or {}).get("spec") or {}
    container: dict[str, Any] = {
        "name": LISTENER,
        "image": image,
        "command": ["/ghalistener"],
        "volumeMounts": [
            {"name": "listener-config", "mountPath": "/etc/gha-listener", "readOnly": True}
        ],
    }
    extra: list[dict[str, Any]] = []
    for from_template in template.get("containers") or []:
        if from_template.get("name") == LISTENER:
            for key in ("securityContext", "resources"):
                if key in from_template:
                    container[key] = from_template[key]
        else:
            extra.append(dict(from_template))
    pod_spec: dict[str, Any] = {
        "nodeSelector": template.get("nodeSelector") or {"kubernetes.io/os": "linux"},
        "restartPolicy": "Never",
        "containers": [container, *extra],
        "volumes": [{"name": "listener-config", "secret": {"secretName": f"{name}-listener"}}],
    }
    for key in ("securityContext", "tolerations", "affinity"):
        if key in template:
            pod_spec[key] = template[key]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-listener",
            "namespace": namespace,
            "labels": {
                "actions.github.com/scale-set-name": name,
                "app.kubernetes.io/component": "runner-scale-set-listener",
                "app.kubernetes.io/part-of": "gha-runner-scale-set",
            },
        },
        "spec": pod_spec,
    }


def listener_pods(objects: Iterable[Obj]) -> list[dict[str, Any]]:
    """Every listener pod the controller would start for the runner sets among `objects`
    (none without a controller: nothing would start them)."""
    items = list(objects)
    namespace = controller_namespace(items)
    if namespace is None:
        return []
    image = controller_image(items)
    return [listener_pod(o, namespace=namespace, image=image) for o in items if is_runner_set(o)]


def runner_bounds(runner_set: Obj) -> tuple[int, int]:
    """(minRunners, maxRunners) of a runner set: its pods at rest and at most."""
    spec = runner_set.get("spec") or {}
    least = int(spec.get("minRunners") or 0)
    return least, int(spec.get("maxRunners", least))
