"""The experiment pipeline: one dataset, model and scenario, several methods and seeds, into rows.

``config`` (the typed ``ExperimentConfig`` and its keys) -> ``experiment`` (per seed: scenario,
cached Original and Retrain; per cell: unlearn, time, evaluate; ``continual`` for streams of
requests) -> ``run`` (``run_experiment``: an output folder, rows appended as cells finish, resumable;
``cells`` computes them in worker processes on a ``backends`` backend). ``cache`` is the model
cache and ``runtime`` the one threading policy."""

from .backends import BACKENDS, get_backend
from .cache import ModelCache
from .config import ExperimentConfig, base_hash, cell_key, experiment_identity
from .experiment import Experiment, SeedContext
from .run import run_experiment

__all__ = ["BACKENDS", "Experiment", "ExperimentConfig", "ModelCache", "SeedContext", "base_hash", "cell_key",
           "experiment_identity", "get_backend", "run_experiment"]
