"""Typed view of a data-source config (`conf/data/<name>.yaml`): the generic YAML column mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from recsys.config import as_dict
from recsys.data.schema import SCHEMAS, TABLES
from recsys.errors import ConfigError

SOURCES = ("generic", "synthetic")
_TABLE_KEYS = {
    "path", "format", "delimiter", "encoding", "columns", "date_format", "constants",
    "value_maps", "derive", "categorical", "multi_hot", "numeric", "pii", "image_path_template",
    "rating", "passthrough",
}


@dataclass(frozen=True)
class RatingSpec:
    """Explicit feedback: a rating >= ``threshold`` is a purchase (positive); a lower one is a
    view (``below: view``) or dropped (``below: drop``, as RecBole's rating interval)."""

    column: str
    threshold: float
    below: str = "view"


@dataclass(frozen=True)
class KCore:
    """k-core filter over positive interactions, iterated to a fixed point (0 = no filter)."""

    min_user_interactions: int = 0
    min_item_interactions: int = 0

    @property
    def enabled(self) -> bool:
        return self.min_user_interactions > 0 or self.min_item_interactions > 0


@dataclass(frozen=True)
class TableSpec:
    """How to read one canonical table from a raw file."""

    name: str
    path: Path
    fmt: str | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    columns: dict[str, str] = field(default_factory=dict)  # canonical -> raw
    date_format: str | None = None
    constants: dict[str, Any] = field(default_factory=dict)
    value_maps: dict[str, dict[str, Any]] = field(default_factory=dict)
    derive: dict[str, dict[str, Any]] = field(default_factory=dict)
    categorical: list[str] = field(default_factory=list)
    multi_hot: dict[str, str] = field(default_factory=dict)  # column -> separator
    numeric: list[str] = field(default_factory=list)
    pii: dict[str, str] = field(default_factory=dict)  # column -> drop | coarsen
    image_path_template: str | None = None
    rating: RatingSpec | None = None
    passthrough: list[str] = field(default_factory=list)  # raw columns carried unchanged (no encoding)

    @property
    def raw_columns(self) -> list[str]:
        """Raw columns this spec reads (mapped, attributes, derived sources, PII)."""
        cols = list(self.columns.values()) + self.categorical + list(self.multi_hot) + self.numeric + self.passthrough
        cols += [d["column"] for d in self.derive.values()] + list(self.pii)
        return list(dict.fromkeys(cols))


@dataclass(frozen=True)
class SourceConfig:
    """A whole source: its root (images must stay inside it) and its tables."""

    name: str
    source: str
    root: Path
    tables: dict[str, TableSpec]
    positive_events: tuple[str, ...] = ("purchase",)
    generator: dict[str, Any] | None = None
    kcore: KCore = field(default_factory=KCore)


def parse_source_config(cfg: DictConfig | Mapping[str, Any]) -> SourceConfig:
    """Validate the `data` config group; unknown keys and sources raise :class:`ConfigError`."""
    raw = as_dict(cfg, "data")
    name = str(raw.get("name", "?"))
    source = raw.get("source")
    if source not in SOURCES:
        raise ConfigError(f"data={name}: unknown source {source!r}; expected one of {SOURCES}")
    unknown = set(raw) - {"name", "source", "root", "tables", "positive_events", "generator", "kcore",
                       "exclude_history"}
    if unknown:
        raise ConfigError(f"data={name}: unknown key(s) {sorted(unknown)}")
    if not isinstance(raw.get("exclude_history", False), bool):
        raise ConfigError(f"data={name}: exclude_history must be true or false, got {raw['exclude_history']!r}")
    if "root" not in raw:
        raise ConfigError(f"data={name}: missing `root`")
    root = Path(str(raw["root"])).resolve()
    tables_raw = raw.get("tables") or {}
    tables: dict[str, TableSpec] = {}
    for tname, spec in tables_raw.items():
        if tname not in TABLES:
            raise ConfigError(f"data={name}: unknown table {tname!r}; expected {TABLES}")
        if spec is None:
            continue
        tables[tname] = _table_spec(name, tname, spec, root)
    for required in ("interactions", "users", "items"):
        if required not in tables and source == "generic":
            raise ConfigError(f"data={name}: table {required!r} is required")
    return SourceConfig(
        name=name,
        source=str(source),
        root=root,
        tables=tables,
        positive_events=tuple(raw.get("positive_events") or ("purchase",)),
        generator=raw.get("generator"),
        kcore=_kcore(name, raw.get("kcore") or {}),
    )


def _kcore(src: str, raw: Mapping[str, Any]) -> KCore:
    unknown = set(raw) - {"min_user_interactions", "min_item_interactions"}
    if unknown:
        raise ConfigError(f"data={src}: kcore: unknown key(s) {sorted(unknown)}")
    values: dict[str, int] = {}
    for key in ("min_user_interactions", "min_item_interactions"):
        value = raw.get(key) or 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"data={src}: kcore.{key} must be a non-negative integer, got {value!r}")
        values[key] = value
    return KCore(**values)


def _rating(src: str, tname: str, raw: Mapping[str, Any] | None) -> RatingSpec | None:
    if raw is None:
        return None
    key = f"data={src}: tables.{tname}.rating"
    if tname != "interactions":
        raise ConfigError(f"{key}: a rating applies to the interactions table only")
    unknown = set(raw) - {"column", "threshold", "below"}
    if unknown:
        raise ConfigError(f"{key}: unknown key(s) {sorted(unknown)}")
    if not raw.get("column"):
        raise ConfigError(f"{key}.column: name the file's rating column (a threshold needs ratings)")
    threshold = raw.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ConfigError(f"{key}.threshold must be a number, got {threshold!r}")
    below = str(raw.get("below", "view"))
    if below not in ("view", "drop"):
        raise ConfigError(f"{key}.below must be view or drop, got {below!r}")
    return RatingSpec(column=str(raw["column"]), threshold=float(threshold), below=below)


def _table_spec(src: str, tname: str, spec: dict[str, Any], root: Path) -> TableSpec:
    unknown = set(spec) - _TABLE_KEYS
    if unknown:
        raise ConfigError(f"data={src}: tables.{tname}: unknown key(s) {sorted(unknown)}")
    if "path" not in spec:
        raise ConfigError(f"data={src}: tables.{tname}: missing `path`")
    schema = SCHEMAS[tname]
    columns = {str(k): str(v) for k, v in (spec.get("columns") or {}).items() if v is not None}
    bad = [c for c in columns if schema.column(c) is None]
    if bad:
        known = [c.name for c in schema.columns]
        raise ConfigError(
            f"data={src}: tables.{tname}.columns: unknown canonical column(s) {bad}; "
            f"known: {known} (other attributes go under categorical/multi_hot/numeric)"
        )
    path = Path(str(spec["path"]))
    return TableSpec(
        name=tname,
        path=path if path.is_absolute() else root / path,
        fmt=spec.get("format"),
        delimiter=str(spec.get("delimiter", ",")),
        encoding=str(spec.get("encoding", "utf-8")),
        columns=columns,
        date_format=spec.get("date_format"),
        constants=dict(spec.get("constants") or {}),
        value_maps={k: {str(a): b for a, b in v.items()} for k, v in (spec.get("value_maps") or {}).items()},
        derive=dict(spec.get("derive") or {}),
        categorical=list(spec.get("categorical") or []),
        multi_hot=dict(spec.get("multi_hot") or {}),
        numeric=list(spec.get("numeric") or []),
        pii=dict(spec.get("pii") or {}),
        image_path_template=spec.get("image_path_template"),
        rating=_rating(src, tname, spec.get("rating")),
        passthrough=list(spec.get("passthrough") or []),
    )
