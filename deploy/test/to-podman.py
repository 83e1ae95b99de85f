#!/usr/bin/env python3
"""Turns the Kubernetes manifests under deploy/kubernetes into YAML that Debian's podman 4.3 plays.

    to-podman.py MANIFEST_DIR OUT_DIR [--extra-workers N]

podman kube play (4.3) plays Pods and Deployments; it has no Jobs, Services, Secrets or disruption
budgets. What this changes, and why, is printed to stderr; everything else is played as written
(image, command, args, env from the Secret, security context, resources, volumes):

- The Job's pod template becomes a Pod (restartPolicy Never, as in the Job), named after the Service
  that selects it: on a podman network with DNS a pod's name resolves, so workers reach the server at
  the Service's name, as they do in a cluster.
- The Deployment is played as it is (podman creates `replicas` pods, NAME-pod-0, NAME-pod-1, ...).
  With --extra-workers N, a copy named NAME-extra with N replicas is written too: podman has no
  `scale`, so scaling up means playing the copy, and scaling down means stopping pods.
- Services and PodDisruptionBudgets are dropped (nothing to route or evict under podman).
- Probes are dropped: podman 4.3 runs a livenessProbe as a `curl` health check inside the container
  (the image has no curl) on systemd timers (none here), and ignores readiness and startup probes.
  The play test probes the metrics endpoint from outside instead, as a kubelet would.
- Container ports are dropped: podman 4.3 publishes every containerPort on the host's interfaces.
  Pods reach each other on the play network without them.
- emptyDir volumes, which podman 4.3 makes into a named volume called after the volume (shared by
  every pod that names it the same), get the play's prefix, so that they cannot meet a volume of
  the host's and the test can remove them.
"""
import argparse
import copy
import pathlib
import sys

import yaml


def note(message):
    print(f"to-podman: {message}", file=sys.stderr)


def selects(selector, labels):
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def adapt_pod_spec(spec, owner, prefix):
    spec = copy.deepcopy(spec)
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if container.pop(probe, None) is not None:
                note(f"{owner}: container {container['name']}: {probe} dropped (the test probes from outside)")
        if container.pop("ports", None) is not None:
            note(f"{owner}: container {container['name']}: ports dropped (podman 4.3 would publish them on the host)")
    renamed = {}
    for volume in spec.get("volumes", []):
        if "emptyDir" in volume:
            new = f"{prefix}-{owner}-{volume['name']}"
            renamed[volume["name"]] = new
            volume["name"] = new
            volume["emptyDir"] = {}
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        for mount in container.get("volumeMounts", []):
            mount["name"] = renamed.get(mount["name"], mount["name"])
    if renamed:
        note(f"{owner}: emptyDir volumes become podman volumes {', '.join(renamed.values())}")
    return spec


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifests", type=pathlib.Path)
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--extra-workers", type=int, default=0)
    parser.add_argument("--prefix", default="downpour-play")
    arguments = parser.parse_args()

    documents = []
    for path in sorted(arguments.manifests.glob("*.yaml")):
        documents += [document for document in yaml.safe_load_all(path.read_text()) if document]
    services = [document for document in documents if document["kind"] == "Service"]
    arguments.out.mkdir(parents=True, exist_ok=True)
    written = []
    for document in documents:
        kind, name = document["kind"], document["metadata"]["name"]
        if kind == "Job":
            template = document["spec"]["template"]
            labels = template["metadata"].get("labels", {})
            service = next((s for s in services if selects(s["spec"].get("selector"), labels)), None)
            pod_name = service["metadata"]["name"] if service else name
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod_name, **{k: v for k, v in template["metadata"].items() if k != "name"}},
                "spec": adapt_pod_spec(template["spec"], pod_name, arguments.prefix),
            }
            note(f"job/{name} becomes pod {pod_name}" + (f" (the name of service/{pod_name}, which selects it)" if service else ""))
            target = arguments.out / "server.yaml"
            target.write_text(yaml.safe_dump(pod, sort_keys=False))
            written.append(target)
        elif kind == "Deployment":
            deployment = copy.deepcopy(document)
            deployment["spec"]["template"]["spec"] = adapt_pod_spec(deployment["spec"]["template"]["spec"], name, arguments.prefix)
            target = arguments.out / "workers.yaml"
            target.write_text(yaml.safe_dump(deployment, sort_keys=False))
            written.append(target)
            if arguments.extra_workers > 0:
                extra = copy.deepcopy(deployment)
                extra["metadata"]["name"] = f"{name}-extra"
                extra["spec"]["replicas"] = arguments.extra_workers
                target = arguments.out / "workers-extra.yaml"
                target.write_text(yaml.safe_dump(extra, sort_keys=False))
                written.append(target)
        elif kind in ("Service", "PodDisruptionBudget"):
            note(f"{kind.lower()}/{name} dropped (podman has no {kind}s)")
        else:
            sys.exit(f"to-podman: no podman counterpart for {kind}/{name}")
    for target in written:
        print(target)


if __name__ == "__main__":
    main()
