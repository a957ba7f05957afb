"""Data: splits, conversion from user data, and the dataset registry."""

from .datasets import DATASETS, DatasetBundle, load_dataset
from .split import Split, as_split

__all__ = ["DATASETS", "DatasetBundle", "Split", "as_split", "load_dataset"]
