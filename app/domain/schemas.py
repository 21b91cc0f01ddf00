"""What clients send and receive. Validation here is the first line against bad input.

Each response shape is declared once, as its model (`ItemOut`, `UserOut`), and its view
beside it (at the end): the columns a repository selects for it and the dicts it builds
from their rows derive from the model's fields, in order; a field holding a list of
another view is that view's rows, joined. Views are plain dicts and lists in the
response's shape, serialised as they are (app.api.responses); the models document them
in OpenAPI, and tests check that the two agree.
"""

import re
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import InstrumentedAttribute

from app.platform.models import Base, Item, User

# Largest value of PostgreSQL's `integer`, the type of every id column.
MAX_ID = 2_147_483_647

# Both databases refuse NUL characters in text. Every text field and text parameter says
# so in the OpenAPI schema with this pattern, and is validated against it (422).
NO_NUL = r"^[^\x00]*$"


def _storable_text(value: str) -> str:
    # Unpaired surrogates (which JSON can encode) cannot be stored either. Matching
    # NO_NUL refuses them already; this keeps the rule should a pattern be dropped.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no unpaired surrogates)") from None
    return value


_INTEGER_TEXT = re.compile(r"-?[0-9]+")


def _integer_text(value: object) -> object:
    # Parameters arrive as text, and pydantic's lax mode would read "1.0" (or "1_0",
    # " 1") as an integer: the schema says integer, so only an integer's digits pass.
    if isinstance(value, str) and not _INTEGER_TEXT.fullmatch(value):
        raise PydanticCustomError(
            "int_parsing", "Input should be a valid integer, unable to parse string as an integer"
        )
    return value


def _not_null(value: object) -> object:
    # Left out, the field keeps its default; sent as null, it is refused as the
    # non-null type would refuse it.
    if value is None:
        raise PydanticCustomError("string_type", "Input should be a valid string")
    return value


def _without_null(schema: dict[str, Any]) -> None:
    # The field's schema is its type's: no null (and no null default) in the document.
    schema.pop("default", None)
    (not_null,) = [member for member in schema.pop("anyOf") if member != {"type": "null"}]
    schema.update(not_null)


T = TypeVar("T")
# Integer query and path parameters: in the schema, integers; as text, digits only.
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_integer_text)]
Offset = Annotated[int, Field(ge=0, le=MAX_ID), BeforeValidator(_integer_text)]
Limit = Annotated[int, Field(ge=1, le=100), BeforeValidator(_integer_text)]
# A field that may be left out (it is then None) but not sent as null.
Omittable = Annotated[T | None, BeforeValidator(_not_null), Field(json_schema_extra=_without_null)]

Email = Annotated[
    EmailStr,
    AfterValidator(str.lower),
    Field(
        description="Compared case-insensitively; stored lower-cased.", examples=["ada@example.com"]
    ),
]
Password = Annotated[
    str,
    Field(min_length=8, max_length=128, pattern=NO_NUL, description="8 to 128 characters."),
    AfterValidator(_storable_text),
]
_EMAIL: TypeAdapter[str] = TypeAdapter(Email)

# A password to check rather than to set: any length up to the maximum (nobody gets
# to feed megabytes to the hasher).
LoginPassword = Annotated[
    str, Field(max_length=128, pattern=NO_NUL), AfterValidator(_storable_text)
]
SearchText = Annotated[
    str,
    Field(max_length=255, pattern=NO_NUL, description="Case-insensitive substring of the title."),
    AfterValidator(_storable_text),
]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=NO_NUL),
    AfterValidator(_storable_text),
]
Description = Annotated[
    str, Field(max_length=10_000, pattern=NO_NUL), AfterValidator(_storable_text)
]


def normalized_email(text: str) -> str:
    """An email as sign-up stores it (validated, normalised, lower-cased), so log-in
    finds it; text that is no valid email is only lower-cased (and finds nothing)."""
    try:
        return _EMAIL.validate_python(text)
    except ValidationError:
        return text.lower()


class ErrorMessage(BaseModel):
    """The body of every 4xx/5xx the service itself produces."""

    detail: str


class ItemCreate(BaseModel):
    title: Title
    description: Description | None = None


class ItemUpdate(BaseModel):
    """Only the fields sent are changed; `description` may be set to null, `title` not."""

    title: Omittable[Title] = None
    description: Description | None = None


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    title: str
    description: str | None
    id: int
    owner_id: int
    version: int = Field(description="Goes up with every change; the item's ETag.")


class UserCreate(BaseModel):
    email: Email
    password: Password


class UserUpdate(BaseModel):
    """Only the fields sent are changed. A new password needs the current one."""

    model_config = ConfigDict(
        json_schema_extra={"dependentRequired": {"password": ["current_password"]}}
    )

    email: Omittable[Email] = None
    password: Omittable[Password] = None
    current_password: Omittable[LoginPassword] = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.password is not None and self.current_password is None:
            raise ValueError("current_password is required to change the password")
        return self


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    email: str
    id: int
    is_active: bool
    items: list[ItemOut]


class LoginForm(BaseModel):
    """OAuth2 password flow form (`application/x-www-form-urlencoded`)."""

    grant_type: Literal["password"] | None = None
    username: Annotated[
        str,
        Field(max_length=320, pattern=NO_NUL, description="The account's email."),
        AfterValidator(_storable_text),
    ]
    password: LoginPassword
    scope: Annotated[str, Field(pattern=NO_NUL)] = ""


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type


class Page(BaseModel):
    """Pagination shared by every list endpoint; results are ordered by id.

    `after` (keyset) costs the same at any depth: pass the last id of a page to get
    the next. `skip` (offset) makes the database walk past every skipped row; both
    may be combined (skip counts from `after`).
    """

    after: Offset | None = Field(default=None, description="Only rows with a larger id (keyset).")
    skip: Offset = Field(default=0, description="Rows to skip (offset).")
    limit: Limit = Field(default=100, description="Rows to return, 1 to 100.")


# Views: what responses show of users and items, built from rows.

ViewDict = dict[str, Any]


class View:
    def __init__(self, model: type[BaseModel], entity: type[Base], **children: "View") -> None:
        if len(children) > 1:
            raise ValueError("joined rows carry one child view at most")
        self.model = model
        self.children = children
        self.fields = tuple(name for name in model.model_fields if name not in children)
        self.columns: tuple[InstrumentedAttribute[Any], ...] = tuple(
            getattr(entity, name) for name in self.fields
        )
        self._id = self.fields.index("id")

    def of_row(self, row: Iterable[Any]) -> ViewDict:
        """A row of `columns` (more columns after them are ignored) as the view, with
        no children yet."""
        view = dict(zip(self.fields, row, strict=False))
        for name in self.children:
            view[name] = []
        return view

    def of_rows(self, rows: Iterable[Iterable[Any]]) -> list[ViewDict]:
        """Rows of `columns` as views, children left out (a view without children)."""
        if self.children:
            raise TypeError("a view with children is built from joined rows")
        # map(zip, ...): zip(..., strict=False) in a loop would parse its keyword on
        # every row, a large share of this method's time for a page of 100.
        return list(map(dict, map(zip, repeat(self.fields), rows)))

    def joined_columns(self) -> tuple[InstrumentedAttribute[Any], ...]:
        """Own columns, then each child view's: one row per child (LEFT JOIN)."""
        return self.columns + tuple(c for child in self.children.values() for c in child.columns)

    def of_joined_rows(self, rows: Iterable[Sequence[Any]]) -> list[ViewDict]:
        """Rows of joined_columns(), ordered by own id then child id, as views with
        their children (a view with no child has one row of NULL child columns)."""
        ((name, child),) = self.children.items()
        own, child_id = len(self.fields), len(self.fields) + child._id
        views: list[ViewDict] = []
        for row in rows:
            if not views or views[-1]["id"] != row[self._id]:
                views.append(self.of_row(row))
            if row[child_id] is not None:
                views[-1][name].append(child.of_row(row[own:]))
        return views


def item_etag(item: ViewDict) -> str:
    """An item's ETag: its version, which every change increments."""
    return f'"{item["version"]}"'


ITEM_VIEW = View(ItemOut, Item)
USER_VIEW = View(UserOut, User, items=ITEM_VIEW)
