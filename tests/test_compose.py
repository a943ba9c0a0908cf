"""docker-compose.yml, Dockerfile and .dockerignore agree with storage/config.py and pyproject.toml.

Nothing here needs Docker: the files are read as text/YAML/TOML and checked against the
settings list, so a renamed variable, a missing production setting, a wrong service name or a
port mismatch fails here instead of at deploy time.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from storage.config import Config, settings
from storage.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

TEST_SECRET = "t" * 40

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[?-])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    """A required variable (``${VAR:?msg}`` / ``${VAR?msg}``) is missing."""


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose-style interpolation of ``value`` using ``env``.

    Handles ``${VAR}``, ``$VAR``, ``${VAR:-default}`` (default when unset or empty),
    ``${VAR-default}`` (default when unset), ``${VAR:?msg}`` (error when unset or empty),
    ``${VAR?msg}`` (error when unset) and ``$$`` (a literal ``$``).
    """

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if op is None:
            return current or ""
        if op.endswith("-"):
            return arg if missing else current
        if missing:
            raise InterpolationError(f"{name}: {arg or 'required'}")
        return current

    return _VAR.sub(replace, value)


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


def services() -> dict[str, Any]:
    return load_compose()["services"]


def gateway() -> dict[str, Any]:
    return services()["gateway"]


def worker() -> dict[str, Any]:
    return services()["worker"]


def raw_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict, whether written as a mapping or a list."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = {}
        for item in env:
            name, sep, value = str(item).partition("=")
            assert sep, f"environment entry without '=': {item!r}"
            pairs[name] = value
        return pairs
    assert isinstance(env, dict)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def service_environment(
    service: Mapping[str, Any], shell: Mapping[str, str] | None = None
) -> dict[str, str]:
    shell = {"JWT_SECRET": TEST_SECRET} if shell is None else shell
    return {name: interpolate(value, shell) for name, value in raw_environment(service).items()}


def gateway_environment(shell: Mapping[str, str] | None = None) -> dict[str, str]:
    return service_environment(gateway(), shell)


def known_envs() -> set[str]:
    return {s["env"] for s in settings()}


def depends_on(service: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {} for name in deps}
    return {name: spec or {} for name, spec in deps.items()}


def container_ports(service: Mapping[str, Any]) -> list[tuple[int | None, int]]:
    """(published, target) pairs from short ("[ip:]host:container[/proto]") or long syntax."""
    result = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            result.append((int(published) if published else None, int(entry["target"])))
            continue
        parts = str(entry).split("/", 1)[0].split(":")
        target = int(parts[-1])
        published = int(parts[-2]) if len(parts) >= 2 and parts[-2] else None
        result.append((published, target))
    return result


def dockerfile_env() -> dict[str, str]:
    defaults: dict[str, str] = {}
    for rest in instruction_args("ENV"):
        for word in shlex.split(rest):
            name, sep, value = word.partition("=")
            if sep:
                defaults[name] = value
    return defaults


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    if current.strip():
        logical.append(current)
    result = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def instruction_args(keyword: str) -> list[str]:
    return [rest for key, rest in dockerfile_instructions() if key == keyword]


def exec_or_shell(rest: str) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        return json.loads(rest)
    return shlex.split(rest)


def pip_installs() -> list[list[str]]:
    """The argument lists of every ``pip install`` in the Dockerfile's RUN instructions."""
    installs = []
    for run in instruction_args("RUN"):
        for command in re.split(r"&&|;|\|\|", run):
            words = shlex.split(command)
            for i, word in enumerate(words[:-1]):
                if word.endswith("pip") and words[i + 1] == "install":
                    installs.append(words[i + 2 :])
    return installs


def copy_sources() -> list[str]:
    sources = []
    for rest in instruction_args("COPY"):
        words = [w for w in exec_or_shell(rest) if not w.startswith("--")]
        sources.extend(words[:-1])
    return sources


# -- the interpolation helper itself ----------------------------------------------------------


def test_interpolate_handles_compose_forms():
    env = {"SET": "value", "EMPTY": ""}
    assert interpolate("${SET}", env) == "value"
    assert interpolate("$SET/x", env) == "value/x"
    assert interpolate("${MISSING}", env) == ""
    assert interpolate("${MISSING:-fallback}", env) == "fallback"
    assert interpolate("${EMPTY:-fallback}", env) == "fallback"
    assert interpolate("${EMPTY-fallback}", env) == ""
    assert interpolate("${SET:-fallback}", env) == "value"
    assert interpolate("${SET:?needed}", env) == "value"
    assert interpolate("$${SET}", env) == "${SET}"
    with pytest.raises(InterpolationError, match="MISSING: needed"):
        interpolate("${MISSING:?needed}", env)
    with pytest.raises(InterpolationError, match="EMPTY"):
        interpolate("${EMPTY:?needed}", env)
    assert interpolate("${EMPTY?needed}", env) == ""


# -- docker-compose.yml against storage/config.py ---------------------------------------------


def test_compose_file_uses_the_compose_spec():
    data = load_compose()
    assert "version" not in data, "the compose spec has no top-level 'version' key"
    assert {"mongo", "redis", "gateway", "worker"} <= set(data["services"])


def test_gateway_sets_only_known_settings():
    unknown = sorted(set(raw_environment(gateway())) - known_envs())
    assert not unknown, f"gateway sets variables storage/config.py does not read: {unknown}"


def test_gateway_sets_every_production_setting():
    env = gateway_environment()
    assert env.get("AETHERIAL_ENV") == "production"
    required = [s["env"] for s in settings() if s["production"]]
    assert required, "storage/config.py declares no production settings"
    missing = [name for name in required if not env.get(name)]
    assert not missing, f"required in production but not set for gateway: {missing}"


def test_jwt_secret_must_come_from_the_shell():
    """Compose refuses to start without JWT_SECRET instead of passing an empty one."""
    with pytest.raises(InterpolationError, match="JWT_SECRET"):
        gateway_environment(shell={})
    assert gateway_environment()["JWT_SECRET"] == TEST_SECRET


def test_gateway_environment_is_a_valid_production_config():
    env = gateway_environment()
    try:
        config = Config.from_env(env)
    except ConfigError as exc:
        pytest.fail(f"gateway environment is rejected by storage.config: {exc}")
    assert config.environment == "production"
    assert not config.embedded_mongo
    assert config.jwt_secret == TEST_SECRET
    assert urlparse(config.mongodb_url).hostname == "mongo"
    assert urlparse(config.redis_url).hostname == "redis"
    assert config.host == "0.0.0.0"


def test_gateway_depends_on_the_services_its_urls_name():
    config = Config.from_env(gateway_environment())
    all_services = services()
    deps = depends_on(gateway())
    for url in (config.mongodb_url, config.redis_url):
        host = urlparse(url).hostname
        assert host in all_services, f"{url} points at {host!r}, which is not a service"
        assert host in deps, f"gateway does not depend_on {host!r}"
        assert deps[host].get("condition") == "service_healthy", (
            f"gateway should wait for {host!r} to be healthy"
        )
        assert all_services[host].get("healthcheck", {}).get("test"), (
            f"{host!r} has no healthcheck, so service_healthy never becomes true"
        )


def test_gateway_publishes_its_listening_port():
    config = Config.from_env(gateway_environment())
    ports = container_ports(gateway())
    assert ports, "gateway publishes no port"
    assert any(target == config.port for _, target in ports), (
        f"no published port maps to AETHERIAL_PORT={config.port}: {ports}"
    )
    for published, target in ports:
        assert target == config.port, f"port mapping to {target} is not AETHERIAL_PORT"
        assert published == config.port


def test_gateway_keeps_its_data_dir_on_a_volume():
    data_dir = Path("/app") / Config.from_env(gateway_environment()).data_dir
    mounts = [str(v).split(":")[1] for v in gateway().get("volumes") or [] if ":" in str(v)]
    assert str(data_dir) in mounts, f"{data_dir} is not a volume: {mounts}"


# -- the Celery worker -------------------------------------------------------------------------


def test_worker_runs_celery_on_the_gateway_module():
    command = worker()["command"]
    command = shlex.split(command) if isinstance(command, str) else command
    assert command[:4] == ["celery", "-A", "gateway.worker", "worker"], command


def test_worker_uses_the_gateway_image():
    for key in ("build", "image"):
        assert worker().get(key) == gateway().get(key), f"worker and gateway differ in {key!r}"


def test_worker_and_gateway_share_one_environment():
    unknown = sorted(set(raw_environment(worker())) - known_envs())
    assert not unknown, f"worker sets variables storage/config.py does not read: {unknown}"
    assert raw_environment(worker()) == raw_environment(gateway())


def test_worker_environment_is_a_valid_worker_config():
    from gateway.worker import check_worker_config

    config = Config.from_env(service_environment(worker()))
    check_worker_config(config)  # MONGODB_URL and REDIS_URL set: no embedded MongoDB
    assert config.environment == "production"
    assert config.tasks_backend == "celery", "the gateway would run due jobs itself"
    assert not config.dev_topup_enabled, "dev top-ups (money from nowhere) must be off"


def test_worker_depends_on_healthy_mongo_and_redis():
    config = Config.from_env(service_environment(worker()))
    deps = depends_on(worker())
    for url in (config.mongodb_url, config.redis_url):
        host = urlparse(url).hostname
        assert deps.get(host, {}).get("condition") == "service_healthy", (
            f"worker should wait for {host!r} to be healthy"
        )


def test_worker_has_its_own_healthcheck_and_no_ports():
    """The image's HEALTHCHECK asks the gateway's HTTP port, which a worker does not serve."""
    test = worker().get("healthcheck", {}).get("test")
    assert test and "inspect ping" in " ".join(test), test
    assert not worker().get("ports"), "a worker serves no port"


# -- Dockerfile --------------------------------------------------------------------------------


def test_dockerfile_runs_run_py_on_the_compose_port():
    compose_port = Config.from_env(gateway_environment()).port
    cmds = instruction_args("CMD")
    assert cmds, "Dockerfile has no CMD"
    cmd = exec_or_shell(cmds[-1])
    assert cmd[0].startswith("python") and "run.py" in cmd[1:], f"CMD does not run run.py: {cmd}"
    exposed = {int(p.split("/")[0]) for rest in instruction_args("EXPOSE") for p in rest.split()}
    assert compose_port in exposed, f"Dockerfile EXPOSEs {exposed}, compose uses {compose_port}"


def test_dockerfile_env_defaults_are_known_settings():
    defaults = dockerfile_env()
    ours = {
        name: value for name, value in defaults.items() if not name.startswith(("PYTHON", "PIP"))
    }
    unknown = sorted(set(ours) - known_envs())
    assert not unknown, f"Dockerfile sets variables storage/config.py does not read: {unknown}"
    # A production image: it starts only once the production settings are given (compose does).
    with pytest.raises(ConfigError, match="required when AETHERIAL_ENV=production"):
        Config.from_env(ours)
    required = {s["env"]: gateway_environment()[s["env"]] for s in settings() if s["production"]}
    config = Config.from_env({**ours, **required})
    assert config.environment == "production"
    assert config.host == "0.0.0.0"
    assert config.port == Config.from_env(gateway_environment()).port


def test_dockerfile_runs_as_non_root_with_a_healthcheck():
    users = instruction_args("USER")
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "image runs as root"
    checks = instruction_args("HEALTHCHECK")
    assert checks and "/healthz" in checks[-1] and "urllib" in checks[-1]


def test_dockerfile_installs_the_project_not_a_dependency_list():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    dependencies = project["dependencies"]
    installs = pip_installs()
    targets = [arg for args in installs for arg in args if not arg.startswith("-")]
    assert any(t == "." or t.startswith(".[") for t in targets), (
        "Dockerfile must `pip install .` so pyproject.toml's dependencies are installed"
    )
    for dependency in dependencies:
        name = re.split(r"[<>=!~;\[ ]", dependency, maxsplit=1)[0].lower()
        hand_kept = [t for t in targets if t.lower().startswith(name)]
        assert not hand_kept, f"{name} is pinned by hand in the Dockerfile: {hand_kept}"


def test_dockerfile_copies_everything_the_package_build_needs():
    pyproject = tomllib.loads(PYPROJECT.read_text())
    sources = {s.rstrip("/") for s in copy_sources()}
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= {f"{m}.py" for m in pyproject["tool"]["setuptools"].get("py-modules", [])}
    needed |= {
        pattern.rstrip("*")
        for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    missing = sorted(needed - sources)
    assert not missing, f"Dockerfile does not COPY {missing}"

    ignored = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for source in sorted(sources):
        if source == pyproject["project"]["readme"]:
            continue  # README.md may be written by another change; the ignore check still applies
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    for source in sorted(sources):
        hits = [p for p in ignored if fnmatch.fnmatch(source, p.rstrip("/"))]
        assert not hits, f".dockerignore {hits} hides {source} from the build"


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    for entry in (".venv", "var", ".git", "__pycache__", "tests", "bench"):
        assert entry in ignored, f".dockerignore should exclude {entry}"


# -- the mini-program sandbox in production ---------------------------------------------------


def security_options(service: Mapping[str, Any]) -> dict[str, str]:
    """``security_opt`` as {option: value}, whichever separator (``=`` or ``:``) is used; a bare
    ``no-new-privileges`` means true."""
    options = {}
    for entry in service.get("security_opt") or []:
        name, *value = re.split(r"[=:]", str(entry), maxsplit=1)
        options[name] = value[0] if value else "true"
    return options


def explained(line_text: str) -> bool:
    """The compose file says why: a comment right above the line holding ``line_text``."""
    lines = COMPOSE.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == line_text)
    return at > 0 and lines[at - 1].strip().startswith("#")


def test_dockerfile_installs_bubblewrap_and_means_production():
    installs = [
        command
        for run in instruction_args("RUN")
        for command in re.split(r"&&|;", run)
        if "apt-get install" in command
    ]
    assert any("bubblewrap" in shlex.split(command) for command in installs), installs
    env = dockerfile_env()
    assert env.get("AETHERIAL_ENV") == "production"
    assert "MINIAPPS_ALLOW_UNSANDBOXED" not in env, "the image must not waive the sandbox"


def test_compose_never_waives_the_sandbox():
    for service in (gateway(), worker()):
        config = Config.from_env(service_environment(service))
        assert config.environment == "production" and not config.miniapps_allow_unsandboxed


def test_gateway_gets_what_bubblewrap_needs_and_no_more():
    service = gateway()
    assert not service.get("privileged"), "privileged drops every protection at once"
    assert service.get("cap_add") == ["SYS_ADMIN"], service.get("cap_add")
    options = security_options(service)
    assert options.get("apparmor") == "unconfined"  # docker-default denies mount
    assert options.get("systempaths") == "unconfined"  # masked /proc stops a new procfs
    assert options.get("no-new-privileges") == "true"  # SYS_ADMIN never reaches the user
    # The default seccomp profile stays: SYS_ADMIN opens only the namespace and mount calls.
    assert "seccomp" not in options, options
    for line in ("- SYS_ADMIN", "- apparmor=unconfined", "- systempaths=unconfined"):
        assert explained(line), f"docker-compose.yml does not say why it grants {line[2:]}"


def test_worker_gets_no_sandbox_privileges():
    """The worker hosts no mini-programs (it leaves payment events for a gateway)."""
    service = worker()
    assert not service.get("privileged")
    assert not service.get("cap_add")
    assert not security_options(service)
