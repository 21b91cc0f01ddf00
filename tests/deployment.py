"""The Dockerfile and docker-compose.yml, read as Docker reads them, for the tests that
run what they say without a Docker engine (test_image.py, test_compose.py)."""

import copy
import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.databases import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
# The PATH of the base image (python:3.11-slim, as it sets it), which the Dockerfile's ENV
# extends.
BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where the Dockerfile makes its venv. test_compose.py runs the project's venv in its place;
# test_image.py builds one as the Dockerfile does.
IMAGE_VENV = "/opt/venv"
VENV = sys.prefix


@dataclass
class Copy:
    sources: list[str]
    destination: str
    stage: str | None = None  # COPY --from=STAGE; None: from the build context


@dataclass
class Image:
    """One stage of the Dockerfile, as it stands at its end."""

    name: str = ""  # FROM ... AS NAME
    base: str = ""  # the image it starts FROM (for a stage built on another: that one's)
    env: dict[str, str] = field(default_factory=dict)  # ENV, $VAR expanded, in order
    workdir: str = "/"
    user: str = "root"
    uids: dict[str, int] = field(default_factory=lambda: {"root": 0})  # from useradd
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)  # after CMD, in exec form
    runs: list[str] = field(default_factory=list)  # RUN commands
    copies: list[Copy] = field(default_factory=list)
    steps: list[tuple[str, str]] = field(default_factory=list)  # its instructions, in order

    @property
    def uid(self) -> int:
        return self.uids[self.user]

    @property
    def copied(self) -> list[str]:
        """What it COPYs from the build context."""
        return [source for item in self.copies if item.stage is None for source in item.sources]

    def made_directories(self) -> dict[str, str]:
        """Directories the RUN commands make with `install -d -o OWNER`: path -> owner."""
        made: dict[str, str] = {}
        for run in self.runs:
            for command in re.split(r"&&|;", run):
                words = shlex.split(command)
                if words[:2] != ["install", "-d"]:
                    continue
                owner = words[words.index("-o") + 1] if "-o" in words else "root"
                made |= dict.fromkeys((w for w in words[2:] if w.startswith("/")), owner)
        return made


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: comments dropped, continuations joined."""
    joined = re.sub(r"\\\n(?:\s*#[^\n]*\n)*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def expanded(value: str, env: Mapping[str, str]) -> str:
    """$VAR and ${VAR} in an ENV value."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)


def read_stages(path: Path = DOCKERFILE) -> list[Image]:
    """Every stage of the Dockerfile, in order: the last is the image."""
    stages: list[Image] = []
    for keyword, arguments in instructions(path.read_text()):
        if keyword == "FROM":
            words = [w for w in shlex.split(arguments) if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            earlier = {stage.name: stage for stage in stages if stage.name}
            if words[0] in earlier:  # FROM an earlier stage: it goes on from where that ended
                stage = copy.deepcopy(earlier[words[0]])
                stage.name, stage.steps = name, []
            else:
                stage = Image(name=name, base=words[0], env={"PATH": BASE_PATH})
            stages.append(stage)
            continue
        assert stages, f"{keyword} before any FROM"
        image = stages[-1]
        image.steps.append((keyword, arguments))
        match keyword:
            case "ENV":
                for pair in shlex.split(arguments):
                    name, _, value = pair.partition("=")
                    image.env[name] = expanded(value, image.env)
            case "WORKDIR":
                image.workdir = arguments
            case "USER":
                image.user = arguments
            case "CMD":
                image.cmd = json.loads(arguments)
            case "HEALTHCHECK":
                image.healthcheck = json.loads(arguments.split(" CMD ", 1)[1])
            case "RUN":
                image.runs.append(arguments)
                for useradd in re.finditer(r"useradd\b([^&;]*)", arguments):
                    words = shlex.split(useradd.group(1))
                    image.uids[words[-1]] = int(words[words.index("--uid") + 1])
            case "COPY":
                words = shlex.split(arguments)
                options = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
                *sources, destination = [w for w in words if not w.startswith("--")]
                image.copies.append(Copy(sources, destination, options.get("from")))
    return stages


def read_dockerfile(path: Path = DOCKERFILE) -> Image:
    """The image: the Dockerfile's final stage."""
    return read_stages(path)[-1]


def rebase(value: str, root: Path, directories: list[str]) -> str:
    """A value of the image's environment, the paths under its `directories` moved under
    `root`, where they are recreated here."""
    if not directories:
        return value
    pattern = "|".join(re.escape(d) for d in sorted(directories, key=len, reverse=True))
    return re.sub(rf"(?:{pattern})(?=/|$|:)", lambda m: f"{root}{m.group(0)}", value)


# docker compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
# ${VAR:?error}, ${VAR?error}, ${VAR:+replacement}, ${VAR+replacement}.
INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<bare>[A-Za-z_]\w*)"
    r"|\{(?P<name>[A-Za-z_]\w*)(?:(?P<operator>:?[-?+])(?P<word>[^}]*))?\}|(?P<invalid>))"
)


class InterpolationError(ValueError):
    pass


def interpolate(value: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("invalid") is not None:
            raise InterpolationError(f"invalid interpolation format in {value!r}")
        name = match.group("bare") or match.group("name")
        operator, word = match.group("operator") or "", match.group("word") or ""
        present = name in env and (env[name] != "" or not operator.startswith(":"))
        match operator.lstrip(":"):
            case "-":
                return env[name] if present else word
            case "?":
                if not present:
                    raise InterpolationError(f"required variable {name} is missing: {word}")
                return env[name]
            case "+":
                return word if present else ""
        return env.get(name, "")

    return INTERPOLATION.sub(replace, value)


def interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolated(item, env) for key, item in node.items()}
    return node


def read_compose(env: Mapping[str, str], path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file with `env` as the variables docker compose interpolates."""
    compose: dict[str, Any] = interpolated(yaml.safe_load(path.read_text()), env)
    return compose


def dependencies(service: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """depends_on in its long form: name -> {condition, required}."""
    depends_on = service.get("depends_on", {})
    if isinstance(depends_on, list):
        return {name: {"condition": "service_started"} for name in depends_on}
    return {name: dict(options or {}) for name, options in depends_on.items()}


def start_order(services: Mapping[str, Mapping[str, Any]], profiles: set[str]) -> list[str]:
    """The services `docker compose --profile ... up` starts, dependencies first."""
    active = {
        name
        for name, service in services.items()
        if not service.get("profiles") or profiles & set(service["profiles"])
    }
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"a dependency cycle: {' -> '.join((*path, name))}"
        if name in order:
            return
        for dependency, options in dependencies(services[name]).items():
            if dependency in active:
                visit(dependency, (*path, name))
            else:  # compose refuses to start without it, unless it is optional
                assert options.get("required") is False, f"{name} needs {dependency}"
        order.append(name)

    for name in sorted(active):
        visit(name, ())
    return order


def seconds(duration: str) -> float:
    """A compose duration: 2s, 1m30s, 500ms."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def healthcheck_command(test: list[str] | str) -> list[str]:
    """A healthcheck's `test` as the argv Docker runs."""
    if isinstance(test, str):
        return ["/bin/sh", "-c", test]
    kind, *command = test
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", *command]
    assert kind == "CMD", test
    return command


def passes(
    command: list[str], env: Mapping[str, str], cwd: Path, timeout: float, prefix: list[str]
) -> bool:
    try:
        result = subprocess.run(  # noqa: S603 - the healthcheck of the files under test
            [*prefix, *command],
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def wait_until_healthy(
    command: list[str],
    env: Mapping[str, str],
    cwd: Path,
    *,
    timeout: float,
    deadline: float,
    prefix: list[str] | None = None,
    alive: Any = None,
) -> None:
    """Run a healthcheck until it passes (more often than its interval: the test is about
    whether it passes, not when); fail at `deadline` or when `alive()` turns false."""
    while not passes(command, env, cwd, timeout, prefix or []):
        if alive is not None and not alive():
            raise AssertionError(f"the service stopped before its healthcheck {command} passed")
        if time.monotonic() > deadline:
            raise AssertionError(f"the healthcheck {command} did not pass")
        time.sleep(0.2)
