"""Canonical table schemas shared by every source and by the processed dataset on disk.

Raw (canonical) tables, as every source yields them before preprocessing:

* ``interactions``: user_id (str), item_id (str), timestamp (datetime64[ns]; all NaT when the source
  has no timestamp column, rows then keep file order), event (str, one of :data:`EVENTS`),
  quantity (int64), price (float64), channel (str).
* ``users``: user_id (str) + optional demographics (age float, gender, region, occupation,
  income_band: str), consents (marketing_consent, social_image_consent: bool),
  preferred_channel (str) and any extra categorical / numeric columns named by the source config.
* ``items``: item_id (str) + categorical attributes (str), multi-valued attributes (str joined by
  ``|``), price (float64), stock (int64), image_path (str, relative to the data root).
* ``user_images``: user_id (str), image_path (str, relative to the data root), posted_at (datetime).

Processed dataset directory (written atomically by :mod:`recsys.data.pipeline`). Every fitted
statistic (outlier fences, imputed values, vocabularies, scalers, PCA, ``first_seen``) is fitted on
the training split (users and items: those in a training interaction) and applied to all rows:

* ``train.parquet``, ``val.parquet``, ``test.parquet``: interactions with ``user_idx``/``item_idx``
  (int64, dense 0..n-1 over users.parquet / items.parquet), the canonical columns and
  ``positive`` (bool: event counts as a positive).
* ``users.parquet``: ``user_idx``, pseudonymised ``user_id``, raw demographic columns, for each
  categorical feature ``<col>_idx`` (int64, 0 = out-of-vocabulary / missing), for each numeric
  feature ``<col>_z`` (standardised float32), ``<col>_mm`` (min-max float32, may leave [0, 1]
  outside training) and ``<col>_missing`` (the raw value was filled), consents.
* ``items.parquet``: ``item_idx``, ``item_id``, raw attribute columns, ``<col>_idx`` per
  categorical, ``<col>_multi`` (list<int64>, 0 = OOV) per multi-valued field, ``<col>_z`` /
  ``<col>_mm`` per numeric, ``image_path`` (relative to ``manifest["image_root"]``),
  ``first_seen`` (first training timestamp, NaT if never in training or without timestamps).
* ``user_images.parquet``: ``user_idx``, ``user_id``, ``image_path``, ``posted_at``.
* ``vocabs.json``: ``{feature: [values...]}``; index 0 is ``<unk>``.
* ``fitted.json`` and ``fitted.*.npy``: the other fitted statistics (:mod:`recsys.data.fitted`).
* ``features.json``: ``{"users": {"categorical": [...], "multi_hot": [...], "numeric": [...]},
  "items": {...}}`` naming the encoded feature columns (without suffix).
* ``quality_report.json`` / ``quality_report.md`` and ``manifest.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recsys.errors import ConfigError

EVENTS: tuple[str, ...] = ("purchase", "click", "view", "cart", "favorite")
UNK = "<unk>"
MULTI_SEP = "|"
TABLES: tuple[str, ...] = ("interactions", "users", "items", "user_images")
SPLITS: tuple[str, ...] = ("train", "val", "test")


def default_history(split: str) -> tuple[str, ...]:
    """The splits before the evaluated ``split`` (train for val, train and val for test): the
    history its users are ranked from by default."""
    if split not in SPLITS or split == "train":
        raise ConfigError(f"eval.split must be val or test, got {split!r}")
    return SPLITS[: SPLITS.index(split)]


@dataclass(frozen=True)
class Column:
    """One canonical column: its kind, whether a source must provide it, and its fill value."""

    name: str
    kind: str  # "id" | "str" | "float" | "int" | "datetime" | "bool"
    required: bool = False
    default: object = None
    may_be_absent: bool = False  # a required column a source may lack entirely (then all null)


@dataclass(frozen=True)
class TableSchema:
    """Canonical columns of one table; sources may add extra attribute columns."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = field(default_factory=tuple)

    @property
    def required(self) -> list[str]:
        """Columns every source must provide (a may-be-absent column only when mapped)."""
        return [c.name for c in self.columns if c.required and not c.may_be_absent]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


INTERACTIONS = TableSchema(
    "interactions",
    (
        Column("user_id", "id", required=True),
        Column("item_id", "id", required=True),
        Column("timestamp", "datetime", required=True, may_be_absent=True),
        Column("event", "str", default="purchase"),
        Column("quantity", "int", default=1),
        Column("price", "float", default=float("nan")),
        Column("channel", "str", default="unknown"),
    ),
)
USERS = TableSchema(
    "users",
    (
        Column("user_id", "id", required=True),
        Column("age", "float", default=float("nan")),
        Column("gender", "str", default=None),
        Column("region", "str", default=None),
        Column("occupation", "str", default=None),
        Column("income_band", "str", default=None),
        Column("marketing_consent", "bool", default=False),
        Column("social_image_consent", "bool", default=False),
        Column("preferred_channel", "str", default=None),
    ),
    key=("user_id",),
)
ITEMS = TableSchema(
    "items",
    (
        Column("item_id", "id", required=True),
        Column("price", "float", default=float("nan")),
        Column("stock", "int", default=-1),
        Column("image_path", "str", default=None),
    ),
    key=("item_id",),
)
USER_IMAGES = TableSchema(
    "user_images",
    (
        Column("user_id", "id", required=True),
        Column("image_path", "str", required=True),
        Column("posted_at", "datetime", default=None),
    ),
)
SCHEMAS: dict[str, TableSchema] = {
    s.name: s for s in (INTERACTIONS, USERS, ITEMS, USER_IMAGES)
}
