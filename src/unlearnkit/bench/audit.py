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
trains what is new. Each model is a job (``audit_jobs``) run on a backend of ``bench.backends``
(``workers`` processes; 1 = in this process); ``audit_analysis`` turns their statistics into rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from .._version import __version__
from ..errors import UnlearnkitError
from ..methods import METHODS
from ..methods.base import describe_data
from .audit_analysis import analyse
from .audit_jobs import AuditJob, _config_payload, _init_worker, _scenario_pieces, plan_jobs, run_job
from .backends import get_backend
from .cache import ModelCache
from .experiment import Experiment, ExperimentConfig
from .runtime import plan_workers, progress_bar, runtime_record

log = logging.getLogger(__name__)


@dataclass
class AuditConfig:
    """An audit: the experiment (dataset, model, scenario, methods; ``seeds[0]`` draws the forget
    set) and the attack sizes."""

    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    shadow_models: int = 16      # K: LiRA shadows and U-LiRA (unlearned, retrained) pairs
    challenge_models: int = 32   # N: unlearned and retrained models of the challenge score
    variance: str = "auto"       # Gaussian variance: auto (global below 64 models), global, per_example
    augment: str = "none"        # phi averaged over views: none, flip (images trained with flips)
    workers: int = 0             # processes; 0 = auto (CPU cores, at most 8), 1 = in this process
    #: U-LiRA shadow originals: "shadow" = K originals of their own (Hayes et al.: the attacker simulates
    #: training too), "shared" = reuse the N challenge runs from the one Original (no extra models; a
    #: stronger attacker who knows the original's randomness)
    ulira_originals: str = "shadow"
    lira: bool = True
    ulira: bool = True
    challenge: bool = True
    #: train same-shape models in stacks (bench/audit_stacked.py); False = one by one
    vectorize: bool = True
    backend: str = "local"       # where the jobs run (bench/backends.py): local or ray
    address: Optional[str] = None  # Ray cluster address (ray backend)

    def validate(self) -> None:
        self.experiment.validate()
        if self.shadow_models < 4 or self.shadow_models % 2:
            raise UnlearnkitError(f"--shadow-models must be an even number >= 4, got {self.shadow_models}")
        if self.challenge_models < 3:
            raise UnlearnkitError(f"--challenge-models must be >= 3, got {self.challenge_models}")
        if self.variance not in ("auto", "global", "per_example"):
            raise UnlearnkitError(f"variance={self.variance!r}: use auto, global or per_example")
        if self.augment not in ("none", "flip"):
            raise UnlearnkitError(f"augment={self.augment!r}: use none or flip")
        if self.ulira_originals not in ("shadow", "shared"):
            raise UnlearnkitError(f"ulira_originals={self.ulira_originals!r}: use shadow or shared")
        if self.ulira and self.ulira_originals == "shared" and not self.challenge:
            raise UnlearnkitError("U-LiRA with shared originals reuses the challenge models: do not skip the challenge")
        if self.workers < 0:
            raise UnlearnkitError(f"workers must be >= 0, got {self.workers}")
        get_backend(self.backend, self.address)  # unknown names fail here, listing the valid ones

    @property
    def seed(self) -> int:
        return self.experiment.seeds[0]

    def n_workers(self) -> int:
        return plan_workers(self.workers, self.experiment.threads)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["experiment"] = self.experiment.to_dict()
        return d


def _execute(jobs: list[AuditJob], cfg: AuditConfig, cache: ModelCache, progress: bool) -> tuple[dict, dict]:
    """Run every job on the backend; job id -> statistics, and job id -> error for those that failed
    (one failing method must not sink the audit)."""
    results: dict[tuple, dict] = {}
    errors: dict[tuple, str] = {}
    bar = progress_bar(len(jobs), progress, "audit models")
    outcomes = get_backend(cfg.backend, cfg.address).run(
        run_job, jobs, workers=min(cfg.n_workers(), len(jobs)), threads=cfg.experiment.threads,
        initializer=_init_worker, initargs=(_config_payload(cfg), str(cache.root), cache.enabled))
    for job, result, error in outcomes:
        if error is None:
            results[job.id] = result
        else:
            errors[job.id] = error
            log.warning("%s failed: %s", job.name, error)
        bar.set_postfix_str(job.name)
        bar.update(1)
    bar.close()
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
    pieces = _scenario_pieces(exp, _config_payload(config))
    data = pieces["data"]
    methods, skipped = runnable_methods(exp, data)
    jobs = plan_jobs(config, methods)
    log.info("audit: %d models to build or load (K=%d, N=%d, %d workers)", len(jobs), config.shadow_models,
             config.challenge_models, min(config.n_workers(), len(jobs)))
    stacked = {"skipped": "vectorize=False"}
    if config.vectorize:
        from .audit_stacked import pretrain_stacked

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
    from .report import summarize

    rows = audit.pop("rows")
    out = {"unlearnkit_version": __version__, "config": config.experiment.to_dict(),
           "runtime": runtime_record(exp.device, config.experiment.threads, audit["workers"]),
           "audit_config": config.to_dict(), "rows": rows, "summary": summarize(rows),
           "forget_indices": {str(config.seed): data.forget_indices.tolist()}, "audit": audit}
    if out_dir is not None:
        from .audit_report import write_audit_outputs

        write_audit_outputs(out, Path(out_dir))
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



__all__ = ["AuditConfig", "audit", "run_audit", "run_job", "runnable_methods"]
