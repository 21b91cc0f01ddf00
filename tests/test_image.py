"""The image, built and run as the Dockerfile says, without a Docker engine.

The test reads the Dockerfile's stages and recreates the image: a root-owned directory
stands for the image's file system. The build stage runs there first, as root: its COPYs
of the build context and its `uv` commands (uv from `make install`, the version the
Dockerfile pins), which install uv.lock's packages and the project into /opt/venv; then
only what the final stage copies from it stays. The final stage adds its WORKDIR (root's,
as WORKDIR makes it), the directories its RUN commands make with `install -d -o OWNER`
(owned as they say) and the user's home; paths in the ENV are moved accordingly. Then, as
the image's USER (its uid from the useradd; setpriv drops root), in the WORKDIR, with the
image's ENV and nothing else, it runs `app migrate` and the CMD, and runs the HEALTHCHECK
until it passes. Nothing of it reaches into the checkout, which may sit where that user
cannot go (a private temporary directory, root's home).

Not emulated: the base image. Its Python is one of this machine's of the same version
that the image's user can run (the one running the tests may be under a home it cannot
enter: pyenv's under /root); the RUN that installs uv into it is left out. Running as
another user needs root: elsewhere the build-and-run test is skipped, and says so.
"""

import contextlib
import fnmatch
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.databases import PROJECT_ROOT
from tests.deployment import IMAGE_VENV, Image, read_stages, rebase, wait_until_healthy
from tests.helpers import PASSWORD, unique_email
from tests.servers import START_TIMEOUT, Server, free_port

# What the build's uv takes from this machine's environment (and nothing else of it).
PASSED_TO_UV = {
    "HOME",
    "XDG_CACHE_HOME",
    "UV_CACHE_DIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "UV_NATIVE_TLS",
    *(f"{name}_proxy" for name in ("http", "https", "all", "no")),
    *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "ALL", "NO")),
}
BUILD_TIMEOUT = 300  # seconds: a uv step, from uv's cache; longer when it must download
# Asked of a candidate Python, as the image's user: its version, once it has imported what
# the app needs of its standard library and found its own file (without which it would not
# see the venv it runs in: a kernel may run a file in a directory its user cannot enter).
ASKED = (
    "import json, os, sqlite3, ssl, sys; assert os.path.exists(sys.executable); "
    "print('%d.%d' % sys.version_info[:2])"
)


def setpriv(uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def uv() -> str:
    """The uv `make install` puts in .tools (the pinned one), or else one on the PATH."""
    for candidate in (str(PROJECT_ROOT / ".tools" / "bin" / "uv"), shutil.which("uv")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("The image is built with uv: `make install` installs it.", pytrace=False)


def python_for(image: Image) -> str:
    """A Python of the base image's version that the image's user can run."""
    tag = re.fullmatch(r"python:(\d+\.\d+)\S*", image.base)
    assert tag, f"the image is not built FROM an official Python image: {image.base}"
    name = f"python{tag.group(1)}"
    directories = [
        Path(sys.base_prefix) / "bin",  # the one running the tests, unless it is private
        *(Path(d) for d in os.environ.get("PATH", "").split(os.pathsep) if d),
        Path("/usr/local/bin"),
        Path("/usr/bin"),
    ]
    tried = []
    for candidate in dict.fromkeys(str(d / name) for d in directories):
        if not os.access(candidate, os.X_OK):
            continue
        tried.append(candidate)
        runs = subprocess.run(  # noqa: S603 - a Python interpreter, asked its version
            [*setpriv(image.uid), candidate, "-c", ASKED],
            cwd="/",
            env={"PATH": os.defpath},
            capture_output=True,
            text=True,
            check=False,
        )
        if runs.returncode == 0 and runs.stdout.strip() == tag[1]:
            return candidate
    pytest.fail(
        f"The image's user (uid {image.uid}) can run none of this machine's {name}: "
        f"{tried or 'there is none'}. Install one it can (Debian: apt-get install -y {name}).",
        pytrace=False,
    )


def copy_in(source: Path, target: Path) -> None:
    """COPY from the build context: a directory's contents, or a file."""
    if source.is_dir():
        shutil.copytree(
            source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def build(stages: list[Image], root: Path) -> None:
    """The stages before the last, under `root`, as `docker build` runs them (as root): their
    WORKDIRs, their COPYs of the build context and their `uv` commands."""
    built = {stage.name for stage in stages[:-1]}
    python = python_for(stages[-1])
    directories = [IMAGE_VENV, *(stage.workdir for stage in stages)]
    builder = uv()
    for stage in stages[:-1]:
        workdir = Path("/")
        env = {name: rebase(value, root, directories) for name, value in stage.env.items()}
        # This machine's uv cache, certificates and proxies; its Python for the base image's.
        env |= {key: value for key, value in os.environ.items() if key in PASSED_TO_UV}
        env |= {"PATH": f"{Path(builder).parent}:{env['PATH']}", "UV_PYTHON": python}
        for keyword, arguments in stage.steps:
            here = root / str(workdir).lstrip("/")
            if keyword == "WORKDIR":
                workdir = workdir / arguments
                (root / str(workdir).lstrip("/")).mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY":
                words = [w for w in shlex.split(arguments) if not w.startswith("--")]
                assert "--from" not in arguments, f"not emulated: COPY {arguments}"
                *sources, destination = words
                target = here / destination
                for source in sources:
                    into = destination.endswith("/") and not (PROJECT_ROOT / source).is_dir()
                    copy_in(PROJECT_ROOT / source, target / Path(source).name if into else target)
            elif keyword == "RUN":
                words = shlex.split(arguments)
                if words[:2] == ["pip", "install"] and any(w.startswith("uv==") for w in words):
                    continue  # installs uv in the base image: this test brings its own
                assert words[0] == "uv", f"not emulated: RUN {arguments}"
                done = subprocess.run(  # noqa: S603 - the build stage's own commands
                    [builder, *words[1:]],
                    cwd=here,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=BUILD_TIMEOUT,
                    check=False,
                )
                assert done.returncode == 0, f"RUN {arguments}:\n{done.stderr}"
    # The final stage starts afresh: of the build, only what it copies stays, where it was
    # made (a venv cannot move: its scripts name their own path).
    kept = []
    for copied in stages[-1].copies:
        assert copied.stage in built, f"the image copies from {copied.stage}, not a stage"
        assert copied.sources == [copied.destination], "a venv cannot move"
        kept.append(root / copied.destination.lstrip("/"))
    prune(root, kept)


def prune(directory: Path, kept: list[Path]) -> None:
    for path in directory.iterdir():
        if path in kept:
            continue
        if any(path in k.parents for k in kept):
            prune(path, kept)
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


@dataclass
class Container:
    """The image's file system and environment, recreated under `root`."""

    image: Image
    root: Path

    @property
    def workdir(self) -> Path:
        return self.root / self.image.workdir.lstrip("/")

    @property
    def home(self) -> Path:
        return self.root / "home" / self.image.user

    @property
    def venv(self) -> Path:
        return self.root / IMAGE_VENV.lstrip("/")

    def env(self, **overrides: str) -> dict[str, str]:
        """The image's ENV (plus HOME, which Docker sets from the user), and `docker run -e`."""
        directories = [IMAGE_VENV, self.image.workdir, "/home", *self.image.made_directories()]
        env = {
            name: rebase(value, self.root, directories) for name, value in self.image.env.items()
        }
        return env | {"HOME": str(self.home)} | overrides

    @property
    def as_user(self) -> list[str]:
        return setpriv(self.image.uid)

    def run(self, command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - the image's own commands
            [*self.as_user, *command],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@contextlib.contextmanager
def container(stages: list[Image]) -> Iterator[Container]:
    image = stages[-1]
    # Not under tmp_path: pytest keeps that private to root (0700), and the image's
    # user must be able to reach its directories, as in the image.
    root = Path(tempfile.mkdtemp(prefix="image-"))
    try:
        root.chmod(0o755)
        build(stages, root)
        made = Container(image, root)
        made.workdir.mkdir(parents=True, exist_ok=True)  # root's, 0755
        owned = {**image.made_directories(), f"/home/{image.user}": image.user}
        for path, owner in owned.items():
            directory = root / path.lstrip("/")
            directory.mkdir(parents=True, exist_ok=True)
            os.chown(directory, image.uids[owner], image.uids[owner])
        yield made
    finally:
        shutil.rmtree(root)


def files(root: Path) -> dict[Path, int]:
    """Every file under `root`, with the time it was last changed."""
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_the_dockerfile_copies_files_that_exist_and_are_not_ignored() -> None:
    ignored = [
        line.strip()
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [source for stage in read_stages() for source in stage.copied]
    assert copied
    for source in copied:
        assert (PROJECT_ROOT / source).exists(), f"COPY {source}: no such file"
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    # What the image installs is what the lock pins; the migrations ship inside the package.
    assert {"pyproject.toml", "uv.lock", "app"} <= set(copied)
    assert (PROJECT_ROOT / "app" / "migrations" / "env.py").exists()


def test_the_image_holds_the_locked_venv_and_no_build_tools() -> None:
    *builders, image = read_stages()
    assert builders, "a single stage: the image would keep the tools that built it"
    # One base for every stage (the venv's Python is the base image's), pinned to a patch
    # release so that a rebuild is the same image.
    assert {stage.base for stage in read_stages()} == {image.base}
    assert re.fullmatch(r"python:3\.11\.\d+-slim\S*", image.base), image.base

    # uv, at the version the Makefile pins, in the build stage; the image copies the venv
    # alone from it, and installs nothing itself.
    build = builders[-1]
    pinned = re.search(r"^UV_VERSION := (\S+)$", (PROJECT_ROOT / "Makefile").read_text(), re.M)
    assert pinned
    assert any(f"uv=={pinned[1]}" in shlex.split(run) for run in build.runs)
    assert [(c.stage, c.sources, c.destination) for c in image.copies] == [
        (build.name, [IMAGE_VENV], IMAGE_VENV)
    ]
    assert not [run for run in image.runs if re.search(r"\b(uv|pip)\b", run)]

    # The dependencies from the lock in a layer of their own, before the code is copied:
    # a change to the code does not reinstall them.
    syncs = [
        (i, shlex.split(arguments))
        for i, (keyword, arguments) in enumerate(build.steps)
        if keyword == "RUN" and arguments.startswith("uv sync")
    ]
    assert len(syncs) == 2, syncs
    (dependencies, first), (project, second) = syncs
    for words in (first, second):
        assert {"--frozen", "--no-dev"} <= set(words), words
    assert "--no-install-project" in first
    assert "--no-editable" in second
    code = next(
        i
        for i, (keyword, arguments) in enumerate(build.steps)
        if keyword == "COPY" and "app" in shlex.split(arguments)[:-1]
    )
    assert dependencies < code < project
    before = [
        source
        for keyword, arguments in build.steps[:dependencies]
        if keyword == "COPY"
        for source in shlex.split(arguments)[:-1]
    ]
    assert sorted(before) == ["pyproject.toml", "uv.lock"]


@pytest.mark.skipif(os.geteuid() != 0, reason="running as the image's user needs root")
def test_the_image_migrates_and_serves_as_its_user_with_its_defaults() -> None:
    stages = read_stages()
    image = stages[-1]
    assert image.uid != 0, "the image runs as root"
    assert image.env["DATABASE_URL"].startswith("sqlite"), "the image's default database"
    with container(stages) as box:
        # The venv holds the project itself, not a link to the checkout, and no uv.
        where = box.run(["python", "-c", "import app; print(app.__file__)"], box.env())
        assert where.returncode == 0, where.stderr
        assert Path(where.stdout.strip()).is_relative_to(box.venv), where.stdout
        assert not (box.venv / "bin" / "uv").exists()
        assert not list(box.venv.glob("lib/python*/site-packages/uv-*.dist-info"))

        # As `docker run IMAGE app migrate`: nothing set but what the image sets.
        migrated = box.run(["app", "migrate"], box.env())
        assert migrated.returncode == 0, migrated.stderr
        # What the image's default DATABASE_URL is for: the working directory is root's,
        # so ./app.db (the default without it) cannot be made there by the image's user.
        default = box.env()
        del default["DATABASE_URL"]
        refused = box.run(["app", "migrate"], default)
        assert refused.returncode != 0
        assert "unable to open database file" in refused.stderr

        # As `docker run -e HOST=127.0.0.1 -e PORT=... IMAGE`: the CMD, then the HEALTHCHECK.
        port = free_port()
        env = box.env(HOST="127.0.0.1", PORT=str(port))
        log = box.root / "serve.log"
        untouched = files(box.root)
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603 - the image's CMD
                [*box.as_user, *image.cmd],
                cwd=box.workdir,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        try:
            wait_until_healthy(
                image.healthcheck,
                env,
                box.workdir,
                timeout=3,
                deadline=time.monotonic() + START_TIMEOUT,
                prefix=box.as_user,
                alive=lambda: process.poll() is None,
            )
            with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
                assert client.get("/health/ready").status_code == 200
                account = {"email": unique_email(), "password": PASSWORD}
                assert client.post("/users/", json=account).status_code == 200
        except AssertionError as error:
            raise AssertionError(f"{error}\n{server.output()}") from None
        finally:
            # uvicorn ends by its signal after a graceful shutdown.
            assert server.stop() in (0, -signal.SIGTERM), server.output()
        # Everything it wrote is in its data directory, and its own.
        database = Path(env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///"))
        assert database.is_file()
        assert database.stat().st_uid == image.uid
        made = [box.root / path.lstrip("/") for path in image.made_directories()]
        written = [
            path
            for path, changed in files(box.root).items()
            if path != log and untouched.get(path) != changed
        ]
        assert written
        assert all(any(directory in p.parents for directory in made) for p in written), written
