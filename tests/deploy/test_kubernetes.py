"""Static checks of the Kubernetes manifest: operator kinds, CPU and GPU worker groups, no public service."""

from __future__ import annotations

import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANIFEST = os.path.join(ROOT, "deploy", "kubernetes", "daskcluster.yaml")


def load():
    with open(MANIFEST) as f:
        return list(yaml.safe_load_all(f))


def worker_container(doc):
    return doc["spec"]["worker"]["spec"]["containers"][0]


def test_manifest_declares_cluster_and_gpu_worker_group():
    docs = load()
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"DaskCluster", "DaskWorkerGroup"}
    assert all(d["apiVersion"] == "kubernetes.dask.org/v1" for d in docs)
    assert kinds["DaskWorkerGroup"]["spec"]["cluster"] == kinds["DaskCluster"]["metadata"]["name"]


def test_cpu_workers_are_single_threaded_and_gpu_workers_declare_the_resource():
    docs = {d["kind"]: d for d in load()}
    cpu = worker_container(docs["DaskCluster"])
    gpu = worker_container(docs["DaskWorkerGroup"])
    assert cpu["args"][cpu["args"].index("--nthreads") + 1] == "1"
    assert "--resources" not in cpu["args"]
    assert gpu["args"][gpu["args"].index("--resources") + 1] == "GPU=1"
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    for c in (cpu, gpu):
        env = {e["name"]: e["value"] for e in c["env"]}
        assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


def test_scheduler_is_not_exposed_outside_the_cluster():
    cluster = next(d for d in load() if d["kind"] == "DaskCluster")
    service = cluster["spec"]["scheduler"]["service"]
    assert service["type"] == "ClusterIP"
    ports = {p["name"]: p["port"] for p in service["ports"]}
    assert ports == {"tcp-comm": 8786, "http-dashboard": 8787}
