"""`python -m app.openapi [PATH]`: the OpenAPI document /openapi.json serves, built from
create_app() without a server or a database, written to PATH (or to standard output).
`make client` generates the Python client from it."""

import sys
from pathlib import Path

import orjson

from app.main import create_app


def document() -> bytes:
    return orjson.dumps(create_app().openapi(), option=orjson.OPT_INDENT_2) + b"\n"


def main(argv: list[str]) -> None:
    if argv:
        Path(argv[0]).write_bytes(document())
    else:
        sys.stdout.buffer.write(document())


if __name__ == "__main__":
    main(sys.argv[1:])
