"""The `app` command as an operator runs it: what it prints, and how it exits."""

import subprocess
import sys

from tests.databases import PROJECT_ROOT, Database
from tests.servers import app_command


async def test_a_command_that_succeeds_prints_its_result_alone(database: Database) -> None:
    finished = await app_command(database.environment(), "purge-idempotency-keys")
    assert finished.status == 0, finished.err
    assert finished.out.startswith("purged ")
    # SQLAlchemy's pool says "Pool disposed ... Current Overflow: -10" at every exit.
    assert "Pool" not in finished.err, finished.err


# The pool's own logger, configured as every command and the service configure it.
_POOL_LOGGER = """
import sys
from app.db import create_engine
from app.observability import configure_logging
from app.settings import Settings

settings = Settings(_env_file=None, database_url=sys.argv[1])
configure_logging(settings, stream=sys.stderr)
pool = create_engine(settings).pool
pool.logger.info("pool chatter")
pool.logger.warning("a pool warning")
"""


def test_the_pools_warnings_still_reach_the_log(database: Database) -> None:
    finished = subprocess.run(  # noqa: S603 - fixed command line
        [sys.executable, "-c", _POOL_LOGGER, database.url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "a pool warning" in finished.stderr
    assert "pool chatter" not in finished.stderr
