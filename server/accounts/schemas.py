"""JSON API request and response bodies for accounts."""

from __future__ import annotations

from typing import Annotated

import msgspec


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    name: Annotated[str, msgspec.Meta(max_length=80)] = "API"


class TokenResponse(msgspec.Struct):
    token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name


class OrganisationOut(msgspec.Struct):
    id: int
    name: str
    is_org_admin: bool


class MeResponse(msgspec.Struct):
    id: int
    email: str
    display_name: str
    locale: str
    time_zone: str
    roles: list[str]
    email_verified: bool
