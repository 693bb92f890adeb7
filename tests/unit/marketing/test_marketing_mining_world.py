"""Mining the synthetic world finds the co-purchase pairs the generator planted."""

from __future__ import annotations

import json
from pathlib import Path

from recsys.mining import load_mining


def test_item_rules_are_the_planted_complements(synth: Path) -> None:
    truth = json.loads((synth / "raw" / "synthetic" / "world.json").read_text())["truth"]["items"]
    complement = dict(zip(truth["item_id"], truth["complement"], strict=True))
    rules = load_mining(synth / "mining" / "synthetic").association_rules
    item = rules[rules["level"] == "item"]
    pairs = [(a[0], c[0]) for a, c in zip(item["antecedents"], item["consequents"], strict=True)]
    planted = [complement[a] == c or complement[c] == a for a, c in pairs]
    assert len(pairs) >= 10 and sum(planted) / len(pairs) > 0.9
    assert (rules["level"] == "category").any()
