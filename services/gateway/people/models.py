"""HTTP shapes of the people routes (the OpenAPI contract of auth, tokens and users)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from libs.events.catalog.people import Scope
from services.gateway.auth import Role
from services.gateway.errors import contains_nul
from services.gateway.people.domain import EMAIL_MAX, normalise_email, valid_email


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _no_nul(self) -> Body:
        if contains_nul(self.model_dump()):
            raise ValueError("must not contain a NUL character")
        return self


class RegisterIn(Body):
    email: str = Field(max_length=EMAIL_MAX)
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=8, max_length=1024)

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


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    role: Role


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class RoleIn(Body):
    role: Role


class TokenIn(Body):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1, max_length=2)

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[Scope]) -> list[Scope]:
        return sorted(set(value))


class TokenCreatedOut(BaseModel):
    id: str
    token: str = Field(description="the token itself; shown this once, stored only as a digest")
    name: str
    scopes: list[Scope]


class TokenOut(BaseModel):
    id: str
    name: str
    scopes: list[Scope]
    created_at: datetime


class TokenPage(BaseModel):
    items: list[TokenOut]
    next_cursor: str | None
