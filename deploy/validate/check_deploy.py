"""Checks the deployment files the way a cluster and the binary would read them.

1. `kubectl kustomize` renders each overlay (dev, prod).
2. Every core Kubernetes object validates against the Kubernetes schemas, strictly (an unknown
   field is an error), offline (kubernetes-validate, pinned in requirements.txt).
3. CloudNativePG and Prometheus Operator objects, and the compose file, are handed to
   schemas.mjs (models generated from those CRDs; the Compose Specification schema).
4. Every medbill container's configuration (its ConfigMap file plus its environment) loads
   through `medbill config check --deny-unknown-env`: a key the binary does not know fails.
   The compose file's services are checked the same way.
5. References hold: Services, NetworkPolicies and the ServiceMonitor select something, probes
   point at declared ports, readiness asks about the service the container runs, the collector's
   pipelines use components it defines, and every Secret the manifests need is named in
   docs/deploy.md (the platform team creates them; no value is in the repository).

6. With --smoke PG_URL: the compose topology runs as processes on this machine (each compose
   service's command and environment, host names mapped to local ports, a fresh database on the
   given server): payer-sim and the four services start and report SERVING, and eligibility
   checks cross from the eligibility process to payer-sim and back. The containers themselves need
   a Docker daemon (see .ci/run); this proves the configuration they run with.

Usage: check_deploy.py MEDBILL_BINARY [--smoke PG_URL]   (prints each problem; exits 1 on any)
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ["dev", "prod"]
CUSTOM_GROUPS = {"postgresql.cnpg.io", "monitoring.coreos.com"}
# Secret-sourced variables get a value of the type the setting takes; anything else a string.
SECRET_SAMPLES = {"MEDBILL_AUTH__TOKENS": '{"sample-token"="sample-tenant"}'}
GRPC_SERVICES = {
    "eligibility": "medbill.eligibility.v1.EligibilityService",
    "claims": "medbill.claims.v1.ClaimsService",
    "remittance": "medbill.remittance.v1.RemittanceService",
    "collections": "medbill.collections.v1.CollectionsService",
}

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def render(overlay):
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy/k8s/overlays" / overlay)],
        capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        problem(overlay, f"kubectl kustomize failed: {out.stderr.strip()}")
        return []
    return [o for o in yaml.safe_load_all(out.stdout) if o]


def name_of(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def medbill_check(where, config_text, env):
    """Runs `medbill config check` with only `env` (and PATH) in its environment."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [MEDBILL, "config", "check", "--deny-unknown-env"]
        if config_text is not None:
            path = Path(tmp) / "medbill.toml"
            path.write_text(config_text)
            args += ["--config", str(path)]
        run_env = {"PATH": os.environ.get("PATH", ""), **env}
        out = subprocess.run(args, capture_output=True, text=True, env=run_env, check=False)
        if out.returncode != 0:
            problem(where, f"medbill config check: {out.stderr.strip()}")


def container_env(where, container, config_maps):
    """The container's environment as the kubelet would build it (secrets as samples)."""
    env = {}
    for var in container.get("env", []):
        name = var["name"]
        if "value" in var:
            value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), var["value"])
        elif "secretKeyRef" in var.get("valueFrom", {}):
            value = SECRET_SAMPLES.get(name, "sample-secret")
        elif "fieldRef" in var.get("valueFrom", {}):
            value = "sample-pod-0"
        elif "configMapKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["configMapKeyRef"]
            value = config_maps.get(ref["name"], {}).get(ref["key"])
            if value is None:
                problem(where, f"env {name}: no key {ref['key']} in ConfigMap {ref['name']}")
                continue
        else:
            problem(where, f"env {name}: unsupported source")
            continue
        env[name] = value
    return env


def check_workloads(overlay, objects):
    config_maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments]
    services = [o for o in objects if o["kind"] == "Service"]
    for d in deployments:
        where = f"{overlay}: {name_of(d)}"
        spec = d["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            ports = {p["containerPort"] for p in c.get("ports", [])}
            runs_medbill = c.get("args", [])[:1] == ["serve"]
            # medbill migrates before it serves: its containers need a startup probe too.
            needed = ("startupProbe",) if runs_medbill else ()
            for probe in needed + ("livenessProbe", "readinessProbe"):
                target = c.get(probe, {}).get("grpc") or c.get(probe, {}).get("httpGet")
                if target is None:
                    problem(where, f"{c['name']}: no {probe}")
                    continue
                port = target["port"]
                named = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
                if named.get(port, port) not in ports:
                    problem(where, f"{c['name']}: {probe} port {port} is not a container port")
            for mount in c.get("volumeMounts", []):
                volume = volumes.get(mount["name"])
                cm = (volume or {}).get("configMap", {}).get("name")
                if volume is None or (cm is not None and cm not in config_maps):
                    problem(where, f"{c['name']}: volume {mount['name']} is not defined")
            args = c.get("args", [])
            if not runs_medbill:
                continue
            target = args[args.index("--target") + 1]
            readiness = c["readinessProbe"].get("grpc", {}).get("service")
            expected = GRPC_SERVICES.get(target, GRPC_SERVICES["claims"])
            if readiness != expected:
                problem(where, f"readiness asks about {readiness!r}, the container runs {target}")
            config_path = Path(args[args.index("--config") + 1])
            mount = next((m for m in c.get("volumeMounts", []) if Path(m["mountPath"]) == config_path.parent), None)
            cm = volumes.get(mount["name"], {}).get("configMap", {}).get("name") if mount else None
            text = config_maps.get(cm, {}).get(config_path.name)
            if text is None:
                problem(where, f"{config_path} is not mounted from a ConfigMap")
                continue
            medbill_check(where, text, container_env(where, c, config_maps))
    for s in services:
        if not any(matches(s["spec"].get("selector"), labels) for labels in pod_labels):
            problem(f"{overlay}: {name_of(s)}", "selects no pods")
    for p in (o for o in objects if o["kind"] == "NetworkPolicy"):
        where = f"{overlay}: {name_of(p)}"
        if not any(matches(p["spec"]["podSelector"].get("matchLabels"), l) for l in pod_labels):
            problem(where, "podSelector selects no pods")
        for rule in p["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    sel = peer["podSelector"].get("matchLabels")
                    if not any(matches(sel, l) for l in pod_labels):
                        problem(where, f"from podSelector {sel} selects no pods")
    for m in (o for o in objects if o["kind"] == "ServiceMonitor"):
        sel = m["spec"]["selector"].get("matchLabels")
        ports = {p["port"] for p in m["spec"]["endpoints"]}
        hits = [s for s in services if matches(sel, s["metadata"].get("labels", {}))]
        if not hits or any(ports - {p.get("name") for p in s["spec"]["ports"]} for s in hits):
            problem(f"{overlay}: {name_of(m)}", "selects no Service with its metrics port")


def check_collector():
    where = "deploy/k8s/observability/otel-collector-config.yaml"
    config = yaml.safe_load((ROOT / where).read_text())
    for pipeline, spec in config["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in spec.get(kind, []):
                if component not in config.get(kind, {}):
                    problem(where, f"pipeline {pipeline} uses undefined {kind[:-1]} {component}")
    for ext in config["service"].get("extensions", []):
        if ext not in config.get("extensions", {}):
            problem(where, f"undefined extension {ext}")


def check_compose():
    where = "deploy/compose.yaml"
    compose = yaml.safe_load((ROOT / where).read_text())
    for name, service in compose["services"].items():
        command = service.get("command", [])
        if command[:1] != ["serve"] or "payer-sim" in command:
            continue
        env = {k: str(v) for k, v in service.get("environment", {}).items()}
        medbill_check(f"{where}: {name}", None, env)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url, service, deadline):
    while time.time() < deadline:
        out = subprocess.run([MEDBILL, "health", "--url", url, "--service", service],
                             capture_output=True, text=True, check=False)
        if out.returncode == 0:
            return True
        time.sleep(0.5)
    return False


def smoke_compose(pg_url):
    """Runs compose.yaml's services as local processes on a fresh database (see the module doc)."""
    where = "deploy/compose.yaml (as processes)"
    compose = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
    ports = {name: free_port() for name in compose["services"]}
    database = f"medbill_compose_{uuid.uuid4().hex[:12]}"
    server = re.sub(r"/[^/?]*(\?.*)?$", "", pg_url)
    admin = f"{server}/postgres"
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {database}"], check=True)
    local = {f"http://{name}:{inner}": f"http://127.0.0.1:{ports[name]}"
             for name in compose["services"] for inner in (50051, 50061)}
    children = []
    try:
        for name, service in compose["services"].items():
            command = [str(c) for c in service.get("command", [])]
            if command[:1] != ["serve"]:
                continue  # PostgreSQL, the collector, Jaeger: not ours
            if "--listen" in command:
                command[command.index("--listen") + 1] = f"127.0.0.1:{ports[name]}"
            env = {"PATH": os.environ.get("PATH", ""),
                   "MEDBILL_LISTEN": f"127.0.0.1:{ports[name]}",
                   "MEDBILL_METRICS__LISTEN": "127.0.0.1:0"}
            for key, value in service.get("environment", {}).items():
                if key.startswith("OTEL_"):
                    continue  # no collector here
                value = str(value)
                for host, there in local.items():
                    value = value.replace(host, there)
                value = re.sub(r"^postgres://[^@]+@postgres:5432/medbill", f"{server}/{database}", value)
                env[key] = value
            log = open(Path(tempfile.gettempdir()) / f"{database}-{name}.log", "w")
            children.append((name, subprocess.Popen([MEDBILL, *command], env=env, stdout=log, stderr=log)))
        deadline = time.time() + 120
        for name, _ in children:
            if name == "payer-sim":
                continue
            if not healthy(f"http://127.0.0.1:{ports[name]}", GRPC_SERVICES[name], deadline):
                problem(where, f"{name} did not report SERVING (log: {tempfile.gettempdir()}/{database}-{name}.log)")
        if not problems:
            out = subprocess.run(
                [MEDBILL, "bench", "eligibility", "--url", f"http://127.0.0.1:{ports['eligibility']}",
                 "--mode", "cold", "--requests", "20", "--concurrency", "4"],
                capture_output=True, text=True, check=False)
            if out.returncode != 0:
                problem(where, f"eligibility checks through payer-sim failed: {out.stderr.strip()}")
            else:
                print(f"{where}: 5 processes SERVING on one fresh database; eligibility through payer-sim:")
                print("  " + out.stdout.strip().replace("\n", "\n  "))
    finally:
        for _, child in children:
            child.terminate()
        for _, child in children:
            child.wait(timeout=60)
        subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"], check=False)


def secret_names(objects):
    names = set()
    for o in objects:
        text = json.dumps(o)
        names |= set(re.findall(r'"secretKeyRef": \{[^}]*"name": "([^"]+)"', text))
        names |= set(re.findall(r'"secretName": "([^"]+)"', text))
        names |= set(re.findall(r'"passwordSecret": \{"name": "([^"]+)"', text))
        names |= set(re.findall(r'"s3Credentials": .*?"name": "([^"]+)"', text))
    return names


def main():
    custom = []
    secrets = set()
    version = kubernetes_validate.latest_version()
    for overlay in OVERLAYS:
        objects = render(overlay)
        for obj in objects:
            if obj["apiVersion"].split("/")[0] in CUSTOM_GROUPS:
                custom.append({"source": overlay, "object": obj})
                continue
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except Exception as e:  # the library's errors carry the field path in their text
                problem(f"{overlay}: {name_of(obj)}", str(e).splitlines()[0])
        check_workloads(overlay, objects)
        secrets |= secret_names(objects)
    check_collector()
    check_compose()
    if "--smoke" in sys.argv:
        smoke_compose(sys.argv[sys.argv.index("--smoke") + 1])

    deploy_md = (ROOT / "docs/deploy.md").read_text()
    for name in sorted(secrets):
        if name not in deploy_md:
            problem("docs/deploy.md", f"does not say how to create Secret {name}")

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(custom, f)
    out = subprocess.run(
        ["node", str(ROOT / "deploy/validate/schemas.mjs"), f.name, str(ROOT / "deploy/compose.yaml")],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    os.unlink(f.name)
    problems.extend(line for line in out.stdout.splitlines() if line)
    if out.returncode != 0 and not out.stdout.strip():
        problem("schemas.mjs", out.stderr.strip())

    for p in problems:
        print(p)
    print(f"deploy: {len(OVERLAYS)} overlays, {len(custom)} custom objects, compose: "
          f"{'ok' if not problems else f'{len(problems)} problem(s)'} (Kubernetes schemas {version})")
    return 1 if problems else 0


if __name__ == "__main__":
    MEDBILL = sys.argv[1]
    sys.exit(main())
