"""Data stage: sources, validation, cleaning, integration, transformation, splits, processed datasets."""

from recsys.data.dataset import ProcessedDataset, load_dataset

__all__ = ["ProcessedDataset", "load_dataset"]
