"""The benchmark grid: a YAML spec of datasets x models x scenarios x methods x seeds (``spec``), its
cells computed by the pipeline's workers and recorded in a SQLite store (``runner``, ``store``), and
hyperparameters tuned against Retrain on a validation split before the grid runs (``tune``); a
store dumped to text and loaded back (``dump``)."""

from .dump import dump_store, load_dump, open_store
from .runner import default_workers, run_bench
from .spec import BenchSpec, load_spec, parse_spec
from .store import ResultStore
from .tune import load_spec_with_tuning, tune_spec

__all__ = ["BenchSpec", "ResultStore", "default_workers", "dump_store", "load_dump", "load_spec",
           "load_spec_with_tuning", "open_store", "parse_spec", "run_bench", "tune_spec"]
