"""Typed request and response models of the HTTP service (its OpenAPI schema)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

ItemId = Annotated[str, Field(min_length=1, max_length=200)]
FeatureValue = str | float | int | bool | None


def _iso_text(value: Any) -> Any:
    """Times come as ISO 8601 text (no epoch numbers)."""
    if not isinstance(value, str | dt.datetime):
        raise ValueError("time must be ISO 8601 text, e.g. 2024-05-01T10:00:00Z")
    return value


class Consent(BaseModel):
    """A new user's consents (a known user's come from the customer table)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    marketing: bool = False
    social_image: bool = False


class NewUser(BaseModel):
    """A user unknown to the bundle: raw features (as in the customer table), purchase history
    (item ids, most recent first) and consents."""

    model_config = ConfigDict(extra="forbid", strict=True)
    features: dict[Annotated[str, Field(max_length=100)], FeatureValue] = Field(
        default_factory=dict, max_length=100)
    history: list[ItemId] = Field(default_factory=list, max_length=1000)
    consent: Consent = Field(default_factory=Consent)


class RequestContext(BaseModel):
    """Where and when the recommendation is shown (recorded in the response)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    channel: Annotated[str, Field(max_length=50)] | None = None
    time: Annotated[dt.datetime, Field(strict=False), BeforeValidator(_iso_text)] | None = None


class _Recommend(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    k: int = Field(10, ge=1, le=10_000)
    exclude_purchased: bool = True
    context: RequestContext = Field(default_factory=RequestContext)


class KnownUserRequest(_Recommend):
    """A known customer, by stored or original id."""

    user_id: Annotated[str, Field(min_length=1, max_length=200)]


class NewUserRequest(_Recommend):
    """A user unknown to the bundle, described by features, history and consents."""

    new_user: NewUser


def _which(value: Any) -> str | None:
    """The request's kind: ``known`` (user_id), ``new`` (new_user), None (neither or both)."""
    if isinstance(value, BaseModel):
        return "known" if isinstance(value, KnownUserRequest) else "new"
    if not isinstance(value, dict):
        return None
    known, new = "user_id" in value, "new_user" in value
    return "known" if known and not new else "new" if new and not known else None


RecommendRequest = Annotated[
    Annotated[KnownUserRequest, Tag("known")] | Annotated[NewUserRequest, Tag("new")],
    Discriminator(_which, custom_error_type="one_user",
                  custom_error_message="give exactly one of user_id and new_user"),
]


class Contributions(BaseModel):
    """Additive parts of the retrieval score (after consent): they sum to ``retrieval_score``."""

    base: float
    behaviour: float
    image: float
    social: float


class Explanation(BaseModel):
    rules_fired: list[str]
    contributions: Contributions
    social_image: str


class Recommendation(BaseModel):
    rank: int
    item_id: str
    score: float
    retrieval_score: float
    promotion: str | None
    price: float | None
    suggested_price: float | None
    channel: str | None
    send_time: dt.datetime | None
    explanation: Explanation


class RecommendResponse(BaseModel):
    user_id: str | None
    known_user: bool
    bundle_version: str
    rules_applied: bool
    context: RequestContext
    items: list[Recommendation]


class SimilarItem(BaseModel):
    rank: int
    item_id: str
    score: float


class SimilarResponse(BaseModel):
    item_id: str
    bundle_version: str
    items: list[SimilarItem]


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    bundle_dir: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    allow_older: bool = False  # a deliberate rollback to a bundle older than the one served


class ReloadResponse(BaseModel):
    bundle_dir: str
    bundle_version: str


class Health(BaseModel):
    status: str
    bundle_version: str | None = None


class ErrorResponse(BaseModel):
    detail: str
