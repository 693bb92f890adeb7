"""Typed request and response models of the HTTP service (its OpenAPI schema)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

ItemId = Annotated[str, Field(min_length=1, max_length=200)]
FeatureValue = str | float | int | bool | None


class Consent(BaseModel):
    """A new user's consents (a known user's come from the customer table)."""

    model_config = ConfigDict(extra="forbid")
    marketing: bool = False
    social_image: bool = False


class NewUser(BaseModel):
    """A user unknown to the bundle: raw features (as in the customer table), purchase history
    (item ids, most recent first) and consents."""

    model_config = ConfigDict(extra="forbid")
    features: dict[Annotated[str, Field(max_length=100)], FeatureValue] = Field(
        default_factory=dict, max_length=100)
    history: list[ItemId] = Field(default_factory=list, max_length=1000)
    consent: Consent = Field(default_factory=Consent)


class RequestContext(BaseModel):
    """Where and when the recommendation is shown (recorded in the response)."""

    model_config = ConfigDict(extra="forbid")
    channel: Annotated[str, Field(max_length=50)] | None = None
    time: dt.datetime | None = None


class RecommendRequest(BaseModel):
    """Exactly one of ``user_id`` (a known customer, by stored or original id) and
    ``new_user``."""

    model_config = ConfigDict(extra="forbid")
    user_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    new_user: NewUser | None = None
    k: int = Field(10, ge=1, le=10_000)
    exclude_purchased: bool = True
    context: RequestContext = Field(default_factory=RequestContext)

    @model_validator(mode="after")
    def _one_user(self) -> RecommendRequest:
        if (self.user_id is None) == (self.new_user is None):
            raise ValueError("give exactly one of user_id and new_user")
        return self


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
    model_config = ConfigDict(extra="forbid")
    bundle_dir: Annotated[str, Field(min_length=1, max_length=4096)] | None = None


class ReloadResponse(BaseModel):
    bundle_dir: str
    bundle_version: str


class Health(BaseModel):
    status: str
    bundle_version: str | None = None


class ErrorResponse(BaseModel):
    detail: str
