"""report.json of a features directory: what was encoded, reused, or failed (and why)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recsys.data.atomic import write_json_atomic
from recsys.images.extract import EncodeResult

MAX_LISTED_FAILURES = 50


@dataclass
class ImageSetReport:
    """Counts for one image set (product images or social images)."""

    rows: int
    without_image: int = 0
    skipped_no_consent: int = 0
    encoded: int = 0
    cached: int = 0
    placeholders: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)

    def add(self, result: EncodeResult) -> None:
        """Fold in an :class:`EncodeResult` of this set's images."""
        self.encoded += result.encoded
        self.cached += result.cached
        self.placeholders += int((~result.ok).sum())
        for reason, n in result.failed_by_reason().items():
            self.failed[reason] = self.failed.get(reason, 0) + n
        room = MAX_LISTED_FAILURES - len(self.failures)
        self.failures += [
            {"file": f.file, "reason": f.reason, "message": f.message}
            for f in result.failures[: max(room, 0)]
        ]


@dataclass
class ExtractionReport:
    """Everything a features directory was built from, plus timings."""

    dataset: str
    encoder_id: str
    encoder: str
    preprocess_id: str
    raw_dim: int
    dim: int
    device: str
    on_bad_image: str
    pca: dict[str, Any]
    items: ImageSetReport
    user_images: ImageSetReport
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["encoded"] = self.items.encoded + self.user_images.encoded
        out["cached"] = self.items.cached + self.user_images.cached
        out["failed"] = {
            k: self.items.failed.get(k, 0) + self.user_images.failed.get(k, 0)
            for k in sorted(set(self.items.failed) | set(self.user_images.failed))
        }
        return out

    def write(self, path: Path) -> None:
        write_json_atomic(path, self.to_dict())
