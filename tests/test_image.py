"""The image, run as it is built, without a Docker engine.

The test reads the Dockerfile and recreates what matters at run time: a root-owned
directory stands for the image's file system, holding its WORKDIR (root's, as WORKDIR
makes it), the directories its RUN commands make with `install -d -o OWNER` (owned as
they say) and the user's home; the project's venv stands for /opt/venv, and paths in
the ENV are moved accordingly. Then, as the image's USER (its uid from the useradd;
setpriv drops root), in the WORKDIR, with the image's ENV and nothing else, it runs
`app migrate` and the CMD, and runs the HEALTHCHECK until it passes. Not emulated:
the base image and `pip install` (the project's venv is used as it is). Running as
another user needs root: elsewhere the test is skipped, and says so.
"""

import contextlib
import fnmatch
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.databases import PROJECT_ROOT
from tests.deployment import Image, read_dockerfile, rebase, wait_until_healthy
from tests.helpers import PASSWORD, unique_email
from tests.servers import START_TIMEOUT, Server, free_port


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

    def env(self, **overrides: str) -> dict[str, str]:
        """The image's ENV (plus HOME, which Docker sets from the user), and `docker run -e`."""
        directories = [self.image.workdir, "/home", *self.image.made_directories()]
        env = {
            name: rebase(value, self.root, directories) for name, value in self.image.env.items()
        }
        return env | {"HOME": str(self.home)} | overrides

    @property
    def as_user(self) -> list[str]:
        uid = self.image.uid
        return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]

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
def container(image: Image) -> Iterator[Container]:
    # Not under tmp_path: pytest keeps that private to root (0700), and the image's
    # user must be able to reach its directories, as in the image.
    root = Path(tempfile.mkdtemp(prefix="image-"))
    try:
        root.chmod(0o755)
        made = Container(image, root)
        made.workdir.mkdir(parents=True)  # root's, 0755
        owned = {**image.made_directories(), f"/home/{image.user}": image.user}
        for path, owner in owned.items():
            directory = root / path.lstrip("/")
            directory.mkdir(parents=True, exist_ok=True)
            os.chown(directory, image.uids[owner], image.uids[owner])
        yield made
    finally:
        shutil.rmtree(root)


def test_the_dockerfile_copies_files_that_exist_and_are_not_ignored() -> None:
    ignored = [
        line.strip()
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    image = read_dockerfile()
    assert image.copied
    for source in image.copied:
        assert (PROJECT_ROOT / source).exists(), f"COPY {source}: no such file"
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    # The migrations ship inside the package the image installs.
    assert "app" in image.copied
    assert (PROJECT_ROOT / "app" / "migrations" / "env.py").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="running as the image's user needs root")
def test_the_image_migrates_and_serves_as_its_user_with_its_defaults() -> None:
    image = read_dockerfile()
    assert image.uid != 0, "the image runs as root"
    assert image.env["DATABASE_URL"].startswith("sqlite"), "the image's default database"
    with container(image) as box:
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
        written = [p for p in box.root.rglob("*") if p.is_file() and p != log]
        assert written
        assert all(any(directory in p.parents for directory in made) for p in written), written
