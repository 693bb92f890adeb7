"""Request -> response of the service's endpoints (run in the worker pool, off the event loop).

Responses are built with ``model_construct``: every value is cast here to its field's type, so
pydantic's validation of each item would only repeat that work."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsys.retrieval.topk import check_k
from recsys.rules.config import NO_CHANNEL, NO_PROMOTION
from recsys.serving.recommender import PARTS, Ranked, UserQuery
from recsys.serving.schemas import (
    Contributions,
    Explanation,
    KnownUserRequest,
    NewUserRequest,
    Recommendation,
    RecommendRequest,
    RecommendResponse,
    SimilarItem,
    SimilarResponse,
)
from recsys.serving.state import Served
from recsys.serving.user_rules import Decision

SOCIAL_NOT_RULED = "used (no rules applied)"


@dataclass(frozen=True)
class RuledPlan:
    """A user's candidates and the rules' decision over them."""

    candidates: dict[str, np.ndarray]
    decision: Decision


def user_plan(served: Served, req: RecommendRequest, candidates_k: int
              ) -> tuple[RuledPlan | Ranked, bool]:
    """The request's plan (rules applied when the service has rules, else the retrieval
    ranking) and whether the user is known to the bundle."""
    rec = served.recommender
    k = check_k(req.k, rec.n_items)
    query: UserQuery
    attributes: dict[str, Any] | None = None
    if isinstance(req, NewUserRequest):
        new = req.new_user
        query = {**new.features, "history": list(new.history)}
        attributes = {**new.features, "history": list(new.history),
                      "marketing_consent": new.consent.marketing,
                      "social_image_consent": new.consent.social_image}
    else:
        query = req.user_id
    if served.rules is None:
        ranked = rec.rank([query], k, req.exclude_purchased)
        return ranked, bool(len(ranked.user_idx)) and int(ranked.user_idx[0]) >= 0
    candidates = rec.rank([query], min(max(k, candidates_k), rec.n_items),
                          req.exclude_purchased).columns()
    known = bool(len(candidates["user_idx"])) and int(candidates["user_idx"][0]) >= 0
    decision = served.rules.decide(candidates, None if known else (attributes or {}))
    return RuledPlan(candidates, decision.head(k)), known


def recommend(served: Served, req: RecommendRequest, candidates_k: int) -> RecommendResponse:
    """The response of ``POST /recommend``."""
    plan, known = user_plan(served, req, candidates_k)
    items = ([_retrieved(plan, j) for j in range(len(plan.item_idx))]
             if isinstance(plan, Ranked) else _ruled(plan))
    user_id = req.user_id if isinstance(req, KnownUserRequest) else None
    return RecommendResponse.model_construct(user_id=user_id, known_user=known,
                             bundle_version=served.version, rules_applied=served.rules is not None,
                             context=req.context, items=items)


def similar(served: Served, item_id: str, k: int) -> SimilarResponse:
    """The response of ``GET /items/{item_id}/similar``."""
    frame = served.recommender.similar(item_id, k)
    items = [SimilarItem.model_construct(rank=int(r["rank"]), item_id=str(r["item_id"]), score=float(r["score"]))
             for r in frame.to_dict(orient="records")]
    return SimilarResponse.model_construct(item_id=item_id, bundle_version=served.version, items=items)


def _retrieved(ranked: Ranked, j: int) -> Recommendation:
    """Row ``j`` of a retrieval ranking (no rules: no promotion, price or channel)."""
    base, behaviour, image, social = (float(ranked.parts[p][j]) for p in PARTS)
    parts = Contributions.model_construct(base=base, behaviour=behaviour, image=image,
                                          social=social)
    return Recommendation.model_construct(
        rank=int(ranked.rank[j]), item_id=str(ranked.item_id[j]), score=float(ranked.score[j]),
        retrieval_score=parts.base + parts.behaviour + parts.image + parts.social,
        promotion=None, price=None, suggested_price=None, channel=None, send_time=None,
        explanation=Explanation.model_construct(rules_fired=[], contributions=parts,
                                social_image=SOCIAL_NOT_RULED))


def _ruled(plan: RuledPlan) -> list[Recommendation]:
    """The rows of a rules decision."""
    d, rows = plan.decision, plan.decision.rows
    cands = plan.candidates
    ids = cands["item_id"][rows]
    base, behaviour, image = (cands[f"{p}_score"][rows].astype(float)
                              for p in ("base", "behaviour", "image"))
    promotion = _label(d.promotion, NO_PROMOTION)
    channel = _label(d.channel, NO_CHANNEL)
    send_time = _time(d.send_time)
    out = []
    for j in range(len(rows)):
        parts = Contributions.model_construct(base=float(base[j]), behaviour=float(behaviour[j]),
                              image=float(image[j]), social=float(d.social[j]))
        out.append(Recommendation.model_construct(
            rank=int(d.rank[j]), item_id=str(ids[j]), score=float(d.score[j]),
            retrieval_score=parts.base + parts.behaviour + parts.image + parts.social,
            promotion=promotion, price=_opt(d.price[j]),
            suggested_price=_opt(d.suggested_price[j]), channel=channel, send_time=send_time,
            explanation=Explanation.model_construct(rules_fired=d.rules_fired[j], contributions=parts,
                                    social_image=d.social_image)))
    return out


def _opt(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _label(value: Any, none: str) -> str | None:
    return None if value is None or pd.isna(value) or str(value) == none else str(value)


def _time(value: Any) -> Any:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(np.datetime64(value)).to_pydatetime()
