"""Administrative commands.

    python -m app.cli create-superuser EMAIL

Creates the account as a superuser, or makes an existing account one (its
password is then left as it is). The password is asked for on the terminal, or
read from the first line of standard input when that is not a terminal.
"""

import argparse
import asyncio
import getpass
import sys

from pydantic import TypeAdapter, ValidationError

from app.db import create_engine, create_sessionmaker
from app.repositories import UserRepository
from app.schemas import Email, Password
from app.security import PasswordHasher
from app.settings import Settings


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise SystemExit("The passwords differ.")
        return password
    return sys.stdin.readline().rstrip("\n")


async def create_superuser(settings: Settings, email: str) -> str:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            users = UserRepository(session)
            user = await users.get_by_email(email)
            if user is not None:
                user.is_superuser = True
                await users.save(user)
                return f"{email} (id {user.id}) is now a superuser"
            password = TypeAdapter(Password).validate_python(_read_password())
            hashed = await PasswordHasher(settings).hash(password)
            user = await users.add(email=email, hashed_password=hashed, is_superuser=True)
            return f"created superuser {email} (id {user.id})"
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-superuser", help="create or promote a superuser")
    create.add_argument("email")
    args = parser.parse_args(argv)
    try:
        email = TypeAdapter(Email).validate_python(args.email)
        print(asyncio.run(create_superuser(Settings(), email)))
    except ValidationError as error:
        raise SystemExit(f"invalid input: {error.errors()[0]['msg']}") from None


if __name__ == "__main__":
    main()
