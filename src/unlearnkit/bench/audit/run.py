"""``run_audit``: strong per-example evidence of forgetting with many models.

For one dataset / model / scenario (its forget set drawn with ``seed``) and several methods:

* **LiRA** against the Original model: K shadow models trained on random halves of the population
  (train + test + third-party, balanced keep matrix); the Original's members are the training set,
  non-members the test and third-party sets. Also, per method, the same attack on the method's
  model restricted to the forget set (``lira_forget_auc``: 0.5 = forget examples look unseen).
* **U-LiRA** per method: K shadow originals (seeds 0..K-1, the whole training set), the method run on
  each (seed 1000 + k, forget set = the scenario's), K retrained models (seeds 0..K-1, retain set);
  leave-one-out over the K (unlearned, retrained) pairs. With ``ulira_originals="shared"`` the N
  challenge runs (all from the one Original) serve as the unlearned shadows instead: no extra
  models, a stronger attacker (it knows the original). The shared variant is also reported as
  ``ulira_shared_acc`` / ``ulira_shared_auc`` whenever the challenge runs.
* **Challenge score** per method: the method run N times (seeds 1000..1000+N-1) from the one
  Original (seed 0) vs N retrained models (seeds 0..N-1).

Every trained model goes through the model cache (originals and Retrain share keys with ``run``'s
where the data agree), so an interrupted audit resumes and a second audit with other methods only
trains what is new. Each model is a job (``jobs``) run on a backend of ``pipeline.backends``
(``workers`` processes; 1 = in this process); ``analysis`` turns their statistics into rows;
``stacked`` first trains same-shape models in stacks where that is on.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Optional

from ..._version import __version__
from ...errors import UnlearnkitError
from ...methods import METHODS
from ...methods.base import describe_data
from ..pipeline.backends import get_backend
from ..pipeline.cache import ModelCache
from ..pipeline.cells import raise_again
from ..pipeline.config import ExperimentConfig
from ..pipeline.experiment import Experiment
from ..pipeline.runtime import progress_bar, runtime_record
from ..reports.audit import write_audit_outputs
from ..reports.summary import summarize
from .analysis import analyse
from .comparison import write_audit_comparison
from .config import AuditConfig
from .jobs import AuditJob, config_payload, init_worker, plan_jobs, run_job, scenario_pieces
from .stacked import pretrain_stacked

log = logging.getLogger(__name__)


def _execute(jobs: list[AuditJob], cfg: AuditConfig, cache: ModelCache, progress: bool) -> tuple[dict, dict]:
    """Run every job on the backend; job id -> statistics, and job id -> error for those that failed
    (one failing method must not sink the audit)."""
    results: dict[tuple, dict] = {}
    errors: dict[tuple, str] = {}
    bar = progress_bar(len(jobs), progress, "audit models")
    outcomes = get_backend(cfg.backend, cfg.address).run(
        run_job, jobs, workers=min(cfg.n_workers(), len(jobs)), threads=cfg.experiment.threads,
        initializer=init_worker, initargs=(config_payload(cfg), str(cache.root), cache.enabled))
    repeated: dict[tuple, list[str]] = {}
    for job, result, error in outcomes:
        for text in (result or {}).pop("warnings", ()) if error is None else ():
            repeated.setdefault((job.method or job.kind, text.partition(":")[0]), []).append(text)
        if error is None:
            results[job.id] = result
        else:
            errors[job.id] = error
            log.warning("%s failed: %s", job.name, error)
        bar.set_postfix_str(job.name)
        bar.update(1)
    bar.close()
    for (name, _), texts in repeated.items():  # a method run N times warns N times: once, with the count
        more = f" (and {len(texts) - 1} more of its {name} runs)" if len(texts) > 1 else ""
        raise_again(name, [texts[0] + more])
    return results, errors


def runnable_methods(exp: Experiment, data) -> tuple[list[str], dict[str, str]]:
    """Methods whose required splits the scenario provides; the others with the reason."""
    ok, skipped = [], {}
    available = data.task.available()
    for m in exp.config.methods:
        missing = [s for s in METHODS.get(m).requires if s not in available]
        if missing:
            skipped[m] = f"needs {', '.join(missing)} data, which scenario {exp.config.scenario!r} does not provide"
        else:
            ok.append(m)
    return ok, skipped


def run_audit(config: AuditConfig, out_dir: str | Path | None = None, *, cache: Optional[ModelCache] = None,
              progress: bool = True) -> dict[str, Any]:
    """Run the audit (resuming from cached models) and, given ``out_dir``, write results.json,
    report.md and plots there. Returns the results dict (rows like ``run``'s plus ``audit``)."""
    config.validate()
    cache = cache or ModelCache()
    start = time.perf_counter()
    exp = Experiment(config.experiment, cache=cache, progress=False)
    pieces = scenario_pieces(exp, config_payload(config))
    data = pieces["data"]
    methods, skipped = runnable_methods(exp, data)
    jobs = plan_jobs(config, methods)
    log.info("audit: %d models to build or load (K=%d, N=%d, %d workers)", len(jobs), config.shadow_models,
             config.challenge_models, min(config.n_workers(), len(jobs)))
    stacked = {"skipped": "vectorize=False"}
    if config.vectorize:
        stacked = pretrain_stacked(jobs, config, cache, min(config.n_workers(), len(jobs)), exp.new_model(0))
    results, errors = _execute(jobs, config, cache, progress)
    for job_id in stacked.pop("trained", []):  # trained in this run (stacked), loaded by its job
        if job_id in results:
            results[job_id]["cached"] = False
    audit = analyse(config, methods, pieces, results, errors)
    audit["skipped_methods"] = skipped
    audit["data_read"] = {m: describe_data(METHODS.get(m), data.task.available()) for m in methods}
    audit["wall_s"] = time.perf_counter() - start
    audit["workers"] = min(config.n_workers(), len(jobs))
    audit["n_models"] = len(jobs)
    audit["n_trained"] = sum(1 for r in results.values() if not r.get("cached"))
    audit["stacked_training"] = stacked
    rows = audit.pop("rows")
    out = {"unlearnkit_version": __version__, "config": config.experiment.to_dict(),
           "runtime": runtime_record(exp.device, config.experiment.threads, audit["workers"]),
           "audit_config": config.to_dict(), "rows": rows, "summary": summarize(rows),
           "forget_indices": {str(config.seed): data.forget_indices.tolist()}, "audit": audit}
    if out_dir is not None:
        write_audit_outputs(out, Path(out_dir))
        records = [results[j.id]["comparison"] for j in jobs if j.full and results.get(j.id, {}).get("comparison")]
        write_audit_comparison(out, records, data.task.forget, Path(out_dir))
    return out


def audit(dataset: str = "digits", model: str = "cnn", scenario: str = "random", methods=("original", "retrain", "ft", "ga"),
          *, seed: int = 0, shadow_models: int = 16, challenge_models: int = 32, out_dir: str | Path | None = None,
          cache_dir: str | Path | None = None, workers: int = 0, progress: bool = True, **options: Any) -> dict[str, Any]:
    """Python API of ``unlearnkit audit``. ``options``: ExperimentConfig fields (``scenario_options``,
    ``method_params``, ``recipe``, ``dataset_options``, ``model_options``, ``device``) and AuditConfig
    fields (``variance``, ``augment``, ``ulira_originals``, ``lira``, ``ulira``, ``challenge``).

        >>> res = audit("digits", "cnn", "random", ["original", "retrain", "ft"], scenario_options={"forget_size": 0.1})
        >>> {r["method"]: r["forgetting_quality"] for r in res["rows"]}
    """
    exp_fields = set(ExperimentConfig.__dataclass_fields__) - {"dataset", "model", "scenario", "methods", "seeds"}
    aud_fields = set(AuditConfig.__dataclass_fields__) - {"experiment", "shadow_models", "challenge_models", "workers"}
    unknown = set(options) - exp_fields - aud_fields
    if unknown:
        raise UnlearnkitError(f"audit() got unknown option(s) {sorted(unknown)}; valid: {sorted(exp_fields | aud_fields)}")
    experiment = ExperimentConfig(dataset=dataset, model=model, scenario=scenario, methods=list(methods), seeds=[seed],
                                  **{k: v for k, v in options.items() if k in exp_fields})
    config = AuditConfig(experiment=experiment, shadow_models=shadow_models, challenge_models=challenge_models,
                         workers=workers, **{k: v for k, v in options.items() if k in aud_fields})
    return run_audit(config, out_dir, cache=ModelCache(cache_dir), progress=progress)



