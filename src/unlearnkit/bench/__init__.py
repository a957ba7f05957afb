"""Experiments and their evidence, in four layers that import only downwards:

* ``reports``  rows in, tables, plots and pages out (no models, no store);
* ``pipeline`` one experiment: typed config, model cache, threading policy, the per-seed and
  per-cell computation, streams of requests, worker processes and backends, the output folder;
* ``grid``     benchmark specs, the SQLite results store, the runner and Optuna tuning;
* ``audit``    the per-example attacks' many models (shadows, repeated runs) and their analysis.

``grid`` and ``audit`` build on ``pipeline``, which builds on ``reports``; ``grid`` and ``audit``
do not import each other.
"""
