"""Consumer mining: RFM, segmentation, profiles, association rules, churn / intent classifiers."""

from recsys.mining.config import MiningConfig
from recsys.mining.outputs import MiningOutputs, load_mining
from recsys.mining.pipeline import MINING_FILES, MiningSummary, run_mining

__all__ = ["MINING_FILES", "MiningConfig", "MiningOutputs", "MiningSummary", "load_mining",
           "run_mining"]
