"""The people service's contract, written once: the credential formats both sides must agree
on, the request/response models, and one `Method` per RPC method.

The people service answers these (`serve(...)`), the gateway asks them (`ask(deps.rpc, ...)`).
Every command's answer is a `Receipt`: the streams it wrote and their last version, so the
gateway can bring its own read model of sessions and tokens up to that write before it answers
(read-your-writes across the two services, with no window). No answer carries a password hash.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from libs.events.catalog.people import RoleName, Scope
from libs.events.contract import Method
from libs.events.inputs import contains_nul

SERVICE = "people"

# Emails and credentials, as both sides read them.

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
EMAIL_MAX = 254
TOKEN_PREFIX = "olt"
PASSWORD_MIN = 12
"""Shorter passwords are refused before any strength check (NIST SP 800-63B asks for 8 at least;
we ask for more because nothing else stands in front of a password here)."""
TOKEN_LIFETIME_MAX_S = 5 * 365 * 86400


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def normalise_password(raw: str) -> str:
    """NFKC (NIST SP 800-63B 5.1.1.2): the same password typed on another system (accents sent
    precomposed or decomposed, full-width letters) is the same string. Its length is counted,
    its strength judged and it is hashed and checked in this form."""
    return unicodedata.normalize("NFKC", raw)


def valid_email(email: str) -> bool:
    return len(email) <= EMAIL_MAX and EMAIL_PATTERN.match(email) is not None


def email_hash(email: str) -> str:
    """SHA-256 hex of the normalised email: names its claim stream and its rate-limit counters,
    so no address sits in a stream id or a counter key."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


def digest(value: str) -> str:
    """SHA-256 hex: right for high-entropy random values (tokens, session secrets)."""
    return hashlib.sha256(value.encode()).hexdigest()


def format_token(token_id: str, token_secret: str) -> str:
    """`olt_<token id hex>_<secret>`: the id lets us find the row, the digest proves the rest."""
    return f"{TOKEN_PREFIX}_{UUID(token_id).hex}_{token_secret}"


def parse_token(value: str) -> str | None:
    """The token id inside a token string, or None when it is not shaped like one."""
    parts = value.split("_", 2)
    if len(value) > 256 or len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    try:
        return str(UUID(hex=parts[1]))
    except ValueError:
        return None


# Requests.


class Body(BaseModel):
    """A request body: no unknown fields, and no NUL character (Postgres can store none)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_nul(self) -> Body:
        if contains_nul(self.model_dump()):
            raise ValueError("must not contain a NUL character")
        return self


class RegisterIn(Body):
    email: str = Field(max_length=EMAIL_MAX)
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(
        min_length=PASSWORD_MIN,
        max_length=1024,
        description=f"at least {PASSWORD_MIN} characters, and not common or easy to guess",
    )

    @field_validator("password", mode="before")
    @classmethod
    def _normalised(cls, value: object) -> object:
        """Before the length bounds, so they count what is hashed."""
        return normalise_password(value) if isinstance(value, str) else value

    @field_validator("email")
    @classmethod
    def _email_shape(cls, value: str) -> str:
        email = normalise_email(value)
        if not valid_email(email):
            raise ValueError("not a valid email address")
        return email

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class LoginIn(Body):
    email: str = Field(max_length=EMAIL_MAX)
    password: str = Field(min_length=1, max_length=1024)
    """As typed, not normalised: a hash made before passwords were normalised is checked
    against this form too (services/people/security.py)."""


class LogoutIn(Body):
    session_id: str


class RoleIn(Body):
    role: RoleName


class ChangeRoleIn(RoleIn):
    user_id: str


class TokenIn(Body):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1, max_length=2)
    expires_at: datetime | None = Field(
        default=None, description="when the token stops working (ISO-8601 with a timezone)"
    )
    expires_in: int | None = Field(
        default=None,
        ge=60,
        le=TOKEN_LIFETIME_MAX_S,
        description="or: seconds from now until it stops working; neither: until revoked",
    )

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[Scope]) -> list[Scope]:
        return sorted(set(value))

    @field_validator("expires_at")
    @classmethod
    def _has_a_timezone(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("needs a timezone, e.g. 2027-01-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _one_expiry(self) -> TokenIn:
        if self.expires_at is not None and self.expires_in is not None:
            raise ValueError("give expires_at or expires_in, not both")
        return self


class TokenRef(Body):
    token_id: UUID


class SessionRef(Body):
    session_id: str = Field(min_length=1, max_length=64)


class UserPatch(Body):
    """PATCH /users/{id}: a new role, and/or `active: false` to deactivate (true: reactivate)."""

    role: RoleName | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> UserPatch:
        if self.role is None and self.active is None:
            raise ValueError("give a role, active, or both")
        return self


class SetActiveIn(Body):
    user_id: str
    active: bool


class PageIn(Body):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=64)


# Answers.


class Written(BaseModel):
    """A stream a command wrote, and its version once written."""

    stream_id: str
    version: int


class Receipt(BaseModel):
    """What every command answers with: the writes, to catch a read model up to them."""

    written: list[Written] = []


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    role: RoleName


class MemberOut(UserOut):
    """A user as admins see the team: deactivated users stay listed, with `active: false`."""

    active: bool


class UserPage(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None


class TokenCreatedOut(BaseModel):
    id: str
    token: str = Field(description="the token itself; shown this once, stored only as a digest")
    name: str
    scopes: list[Scope]
    expires_at: datetime | None = Field(default=None, description="absent: until revoked")


class TokenOut(BaseModel):
    id: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None = Field(description="null: until revoked")


class TokenPage(BaseModel):
    items: list[TokenOut]
    next_cursor: str | None


class Registered(Receipt):
    user: UserOut


class SessionOpened(Receipt):
    """A login: the session id and secret go into the gateway's signed cookie (only the
    secret's digest is stored)."""

    user: UserOut
    session_id: str
    session_secret: str
    expires_at: datetime


class TokenIssued(Receipt):
    token: TokenCreatedOut


class MemberChanged(Receipt):
    user: MemberOut


# Methods: `ns.rpc.people.<name>`.

REGISTER: Method[RegisterIn, Registered] = Method(
    SERVICE, "people.register", RegisterIn, Registered
)
LOGIN: Method[LoginIn, SessionOpened] = Method(SERVICE, "people.login", LoginIn, SessionOpened)
"""401 INVALID_CREDENTIALS for a wrong email or password alike; 403 ACCOUNT_DISABLED for a
deactivated user, only when the password was right (so it tells nobody else the account exists)."""
LOGOUT: Method[LogoutIn, Receipt] = Method(SERVICE, "people.logout", LogoutIn, Receipt)
"""Ends the caller's own session (idempotent)."""
REVOKE_SESSION: Method[SessionRef, Receipt] = Method(
    SERVICE, "people.sessions.revoke", SessionRef, Receipt
)
"""Ends one of the caller's sessions (404 for another's); idempotent."""
CREATE_TOKEN: Method[TokenIn, TokenIssued] = Method(
    SERVICE, "people.tokens.create", TokenIn, TokenIssued
)
"""For a caller signed in with a session (403 when the caller is a token; 403 ACCOUNT_DISABLED
when its owner has been deactivated meanwhile); 422 for an expiry in the past; 429
TOO_MANY_TOKENS when the caller holds `live_tokens_per_user` live tokens."""
REVOKE_TOKEN: Method[TokenRef, Receipt] = Method(SERVICE, "people.tokens.revoke", TokenRef, Receipt)
"""One of the caller's tokens (404 otherwise); idempotent."""
LIST_TOKENS: Method[PageIn, TokenPage] = Method(SERVICE, "people.tokens.list", PageIn, TokenPage)
"""The caller's live tokens (neither revoked nor expired), oldest first."""
LIST_USERS: Method[PageIn, UserPage] = Method(SERVICE, "people.users.list", PageIn, UserPage)
"""The team in registration order (admins only)."""
CHANGE_ROLE: Method[ChangeRoleIn, MemberChanged] = Method(
    SERVICE, "people.users.change_role", ChangeRoleIn, MemberChanged
)
"""409 CANNOT_CHANGE_OWN_ROLE, 409 LAST_ADMIN, 403 FORBIDDEN when the caller is not an admin."""
SET_ACTIVE: Method[SetActiveIn, MemberChanged] = Method(
    SERVICE, "people.users.set_active", SetActiveIn, MemberChanged
)
"""Deactivate (every session and token ends) or reactivate a user. 409 CANNOT_DEACTIVATE_SELF,
409 LAST_ADMIN, 403 FORBIDDEN when the caller is not an admin."""
