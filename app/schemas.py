"""What clients send and receive. Validation here is the first line against bad input."""

from typing import Annotated, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

# Largest value of PostgreSQL's `integer`, the type of every id column.
MAX_ID = 2_147_483_647


def _storable_text(value: str) -> str:
    # Both databases reject NUL and unpaired surrogates (which JSON can encode);
    # catching them here turns what would be a driver error into a clear 422.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no unpaired surrogates)") from None
    return value


Email = Annotated[
    EmailStr,
    AfterValidator(str.lower),
    Field(
        description="Compared case-insensitively; stored lower-cased.", examples=["ada@example.com"]
    ),
]
Password = Annotated[
    str,
    Field(min_length=8, max_length=128, description="8 to 128 characters."),
    AfterValidator(_storable_text),
]
_EMAIL: TypeAdapter[str] = TypeAdapter(Email)
M = TypeVar("M", bound=BaseModel)

# A password to check rather than to set: any length up to the maximum (nobody gets
# to feed megabytes to the hasher).
LoginPassword = Annotated[str, Field(max_length=128), AfterValidator(_storable_text)]
SearchText = Annotated[
    str,
    Field(max_length=255, description="Case-insensitive substring of the title."),
    AfterValidator(_storable_text),
]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(_storable_text),
]
Description = Annotated[str, Field(max_length=10_000), AfterValidator(_storable_text)]


def _refuse_nulls(model: M, *fields: str) -> M:
    # Fields that may be left out but not sent as null (SkipJsonSchema keeps the
    # null out of the OpenAPI schema; this keeps it out of the data).
    for field in fields:
        if field in model.model_fields_set and getattr(model, field) is None:
            raise ValueError(f"{field} cannot be null")
    return model


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

    title: Title | SkipJsonSchema[None] = None
    description: Description | None = None

    @model_validator(mode="after")
    def _no_null_title(self) -> Self:
        return _refuse_nulls(self, "title")


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    title: str
    description: str | None
    id: int
    owner_id: int


class UserCreate(BaseModel):
    email: Email
    password: Password


class UserUpdate(BaseModel):
    """Only the fields sent are changed. A new password needs the current one."""

    model_config = ConfigDict(
        json_schema_extra={"dependentRequired": {"password": ["current_password"]}}
    )

    email: Email | SkipJsonSchema[None] = None
    password: Password | SkipJsonSchema[None] = None
    current_password: LoginPassword | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.password is not None and self.current_password is None:
            raise ValueError("current_password is required to change the password")
        return _refuse_nulls(self, "email", "password", "current_password")


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
        Field(max_length=320, description="The account's email."),
        AfterValidator(_storable_text),
    ]
    password: LoginPassword
    scope: str = ""


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type


class Page(BaseModel):
    """Pagination shared by every list endpoint; results are ordered by id.

    `after` (keyset) costs the same at any depth: pass the last id of a page to get
    the next. `skip` (offset) makes the database walk past every skipped row; both
    may be combined (skip counts from `after`).
    """

    after: int | None = Field(
        default=None, ge=0, le=MAX_ID, description="Only rows with a larger id (keyset)."
    )
    skip: int = Field(default=0, ge=0, le=MAX_ID, description="Rows to skip (offset).")
    limit: int = Field(default=100, ge=1, le=100, description="Rows to return, 1 to 100.")
