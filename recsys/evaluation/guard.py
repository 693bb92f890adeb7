"""A trained artifact is evaluated only on the dataset it was built from: its recorded data
fingerprint must equal the dataset manifest's ``data_fingerprint``."""

from __future__ import annotations

from pathlib import Path

from recsys.errors import ModelError
from recsys.evaluation.eval_data import EvalData


def check_same_data(what: str, path: Path | str, fingerprint: object, data: EvalData) -> None:
    """Refuse ``what`` at ``path`` (a checkpoint or bundle) when ``fingerprint`` differs from
    the evaluated dataset's, naming both fingerprints and both paths."""
    if fingerprint != data.fingerprint:
        raise ModelError(
            f"{what} {path} was built on data_fingerprint {fingerprint!r}, but the evaluated "
            f"dataset {data.manifest_path} has data_fingerprint {data.fingerprint!r}; evaluate "
            f"it on its own dataset or retrain/re-export it on this one")


def checkpoint_fingerprint(path: Path | str) -> object:
    """The ``data_fingerprint`` of a checkpoint's model signature (written by recsys-train)."""
    from recsys.training.checkpoint import read_checkpoint, stored_signature

    path = Path(path)
    return stored_signature(read_checkpoint(path), path).get("data_fingerprint")
