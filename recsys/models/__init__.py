"""Two-tower retrieval models as plain ``nn.Module``s (no training loop here)."""

from recsys.models.inputs import FeatureSchema, ItemInputs, UserInputs
from recsys.models.two_tower import TwoTowerModel

__all__ = ["FeatureSchema", "ItemInputs", "TwoTowerModel", "UserInputs"]
