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
trains what is new. Models are trained in a process pool (``workers``; 1 = in this process).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .._version import __version__
from ..data.split import Split
from ..errors import UnlearnkitError
from ..evaluation.attacks import LiRA, balanced_keep_matrix, challenge_score, ulira_leave_one_out
from ..evaluation.attacks.base import model_statistic
from ..evaluation.registry import MetricInputs, compute_metrics
from ..methods import METHODS, get_method
from ..training import train_model
from ..utils import Timer, seeded, stable_hash
from .cache import ModelCache
from .experiment import Experiment, ExperimentConfig
from .runtime import plan_workers, runtime_key, runtime_record

log = logging.getLogger(__name__)

#: seed offsets: unlearning runs and LiRA shadows never share a seed with originals/Retrain
UNLEARN_SEED = 1000
SHADOW_SEED = 10_000
#: metrics computed for every model and reported as the mean over the N challenge runs (the rest of
#: the registry is computed on the main run only)
PER_RUN_METRICS = ("forget_acc", "retain_acc", "test_acc", "forget_loss")


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

    @property
    def seed(self) -> int:
        return self.experiment.seeds[0]

    def n_workers(self) -> int:
        return plan_workers(self.workers, self.experiment.threads)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["experiment"] = self.experiment.to_dict()
        return d


# -- the worker side: one job = one model, returned as statistics ---------------------------------
_STATE: dict[str, Any] = {}


def _init_worker(config: dict, cache_root: Optional[str], cache_enabled: bool) -> None:
    _STATE.clear()
    _STATE["config"] = config
    _STATE["cache"] = ModelCache(cache_root, enabled=cache_enabled)


def _context() -> dict[str, Any]:
    """Per-process shared pieces, built once: experiment, scenario data, pool, keep matrix."""
    if "exp" not in _STATE:
        cfg = _STATE["config"]
        ecfg = ExperimentConfig(**cfg["experiment"])
        exp = Experiment(ecfg, cache=_STATE["cache"], progress=False)
        _STATE.update(exp=exp, **_scenario_pieces(exp, cfg))
    return _STATE


def _scenario_pieces(exp: Experiment, cfg: dict) -> dict[str, Any]:
    from ..scenarios import get_scenario

    seed = cfg["experiment"]["seeds"][0]
    c = exp.config
    scenario = get_scenario(c.scenario, **c.scenario_options)
    data = scenario.build(exp.bundle(), seed)
    data.task.recipe = c.training_recipe()
    b = exp.bundle()
    parts = [data.train] + [s for s in (b.test, b.third_party) if s is not None and len(s)]
    pool = Split.concat(*parts) if len(parts) > 1 else parts[0]
    keep = balanced_keep_matrix(cfg["shadow_models"], len(pool), seed=SHADOW_SEED + seed)
    return {"scenario": scenario, "data": data, "pool": pool, "keep": keep, "n_train": len(data.train)}


def _original_key(exp: Experiment, data, k: int) -> dict:
    return exp.model_key(k, data)


def _retrain_key(exp: Experiment, data, j: int) -> dict:
    return {**exp.model_key(j, data), "kind": "retrain", "forget": stable_hash(data.forget_indices.tolist()),
            "corrected": None if data.task.corrected is None else stable_hash(data.task.corrected.x.sum().item())}


def _get_original(st: dict, k: int):
    exp, data = st["exp"], st["data"]
    recipe = exp.config.training_recipe()

    def create():
        model = exp.new_model(k)
        with Timer() as t, seeded(k):
            train_model(model, data.train, recipe, seed=k, device=exp.device)
        return model.cpu(), {"time_s": t.seconds}

    model, meta = st["cache"].get_or_create(_original_key(exp, data, k), exp.new_model(k), create)
    return model.eval(), meta


def _get_retrain(st: dict, j: int):
    exp, data = st["exp"], st["data"]

    def create():  # Retrain re-initialises: an untrained model of the architecture is enough
        with Timer() as t:
            model = get_method("retrain").unlearn(exp.new_model(j), data.task, seed=j, device=exp.device)
        return model.cpu(), {"time_s": t.seconds}

    model, meta = st["cache"].get_or_create(_retrain_key(exp, data, j), exp.new_model(j), create)
    return model.eval(), meta


def _shadow_key(st: dict, k: int) -> tuple[dict, np.ndarray]:
    """Cache key of LiRA shadow ``k`` and the pool rows it trains on."""
    c = st["exp"].config
    rows = np.flatnonzero(st["keep"][k])
    key = {"kind": "lira_shadow", "dataset": c.dataset, "dataset_options": c.dataset_options, "model": c.model,
           "model_options": c.model_options, "recipe": c.training_recipe().to_dict(),
           "train": st["data"].train_key, "pool": stable_hash(rows.tolist()), "seed": SHADOW_SEED + k,
           "runtime": runtime_key(st["exp"].device, c.threads)}
    return key, rows


def _get_shadow(st: dict, k: int):
    exp, pool = st["exp"], st["pool"]
    seed = SHADOW_SEED + k
    key, rows = _shadow_key(st, k)

    def create():
        model = exp.new_model(seed)
        with Timer() as t, seeded(seed):
            train_model(model, pool.subset(rows), exp.config.training_recipe(), seed=seed, device=exp.device)
        return model.cpu(), {"time_s": t.seconds}

    model, meta = st["cache"].get_or_create(key, exp.new_model(seed), create)
    return model.eval(), meta


def _task_data(st: dict, original):
    """The worker's scenario data with its own metadata: prepare_task may add what depends on the original."""
    data = replace(st["data"], task=replace(st["data"].task, metadata=dict(st["data"].task.metadata)))
    st["scenario"].prepare_task(original, data)
    return data


def _unlearned_key(exp: Experiment, data, method: str, algorithm, k: int, seed: int) -> dict:
    # resolved hyperparameters (defaults included): a changed default must not reuse a cached model
    return {"kind": "unlearned", "method": method, "params": algorithm.params.to_dict(),
            "original": _original_key(exp, data, k), "forget": stable_hash(data.forget_indices.tolist()),
            "seed": seed, "version": __version__}


def _get_unlearned(st: dict, method: str, k: int, seed: int):
    exp = st["exp"]
    params = exp.config.method_params.get(method, {})
    if method == "retrain" and not params:  # Retrain ignores the input weights: share the pool
        return _get_retrain(st, seed)
    original, _ = _get_original(st, k)
    data = _task_data(st, original)
    algorithm = get_method(method, **params)
    original = exp.start_model(k, data, original, algorithm)  # SISA: its shard ensemble of original k
    key = _unlearned_key(exp, data, method, algorithm, k, seed)

    def create():
        with Timer() as t:
            model = algorithm.unlearn(original, data.task, seed=seed, device=exp.device)
        return model.cpu(), {"time_s": t.seconds}

    template = (algorithm.original_template(exp.new_model(k), len(data.train))
                if getattr(algorithm, "trains_original", False) else exp.new_model(k))
    model, meta = st["cache"].get_or_create(key, template, create)
    return model.eval(), meta


def run_job(job: tuple) -> dict[str, Any]:
    """Build (or load) one model and return its statistics. ``job``: (kind, method, k, seed, full)."""
    st = _context()
    kind, method, k, seed, full = job
    t0 = time.perf_counter()
    if kind == "original":
        model, meta = _get_original(st, k)
    elif kind == "retrain":
        model, meta = _get_retrain(st, k)
    elif kind == "shadow":
        model, meta = _get_shadow(st, k)
    else:
        model, meta = _get_unlearned(st, method, k, seed)
    cfg = _STATE["config"]
    data, pool = st["data"], st["pool"]
    phi = model_statistic(model, pool, cfg["augment"])
    out: dict[str, Any] = {"phi": phi, "time_s": float(meta.get("time_s", 0.0)), "cached": bool(meta.get("cached")),
                           "wall_s": time.perf_counter() - t0}
    if kind != "shadow":
        # every model: the metrics averaged over the N challenge runs; the main model: all of them
        names = None if full else PER_RUN_METRICS
        reference = _get_retrain(st, 0)[0] if full else None
        inputs = MetricInputs(data.task, reference=reference, seed=cfg["experiment"]["seeds"][0])
        out["metrics"], _ = compute_metrics(model, inputs, names)
        if full:
            try:
                out["extra"] = st["scenario"].extra_metrics(model, data)
            except Exception as exc:  # pragma: no cover - a scenario extra must not sink the audit
                log.warning("extra metrics failed: %s", exc)
                out["extra"] = {"extra_metrics": f"skipped: {type(exc).__name__}: {exc}"}
    return out


# -- the driver ------------------------------------------------------------------------------------
def _jobs(cfg: AuditConfig, methods: list[str]) -> list[tuple]:
    K, N = cfg.shadow_models, cfg.challenge_models
    jobs: list[tuple] = []
    shadow_ulira = cfg.ulira and cfg.ulira_originals == "shadow"
    need_originals = range(K) if shadow_ulira else range(1)
    n_retrain = max(K if shadow_ulira else 0, N if cfg.challenge else 0, 1)
    for k in need_originals:
        jobs.append(("original", "", k, k, k == 0))
    for j in range(n_retrain):
        jobs.append(("retrain", "", j, j, j == 0))
    if cfg.lira:
        jobs += [("shadow", "", k, SHADOW_SEED + k, False) for k in range(K)]
    for m in methods:
        if m == "original":
            continue
        runs = set()
        if cfg.challenge:
            runs |= {(0, UNLEARN_SEED + j) for j in range(N)}
        if shadow_ulira:
            runs |= {(k, UNLEARN_SEED + k) for k in range(K)}
        runs.add((0, UNLEARN_SEED))
        if _is_plain_retrain(cfg, m):  # the model depends on the seed only: one job per seed
            runs = {(0, s) for _, s in runs}
        for k, s in sorted(runs, key=lambda r: (r[1], r[0])):
            jobs.append(("unlearned", m, k, s, (k, s) == (0, UNLEARN_SEED)))
    # deduplicate (retrain as a method maps onto the pool inside the worker, keep job ids distinct)
    seen, unique = set(), []
    for j in jobs:
        if j[:4] not in seen:
            seen.add(j[:4])
            unique.append(j)
    return unique


def _is_plain_retrain(cfg: AuditConfig, method: str) -> bool:
    return method == "retrain" and not cfg.experiment.method_params.get("retrain")


def _execute(jobs: list[tuple], cfg: AuditConfig, cache: ModelCache, progress: bool) -> tuple[dict, dict]:
    init_args = (_config_payload(cfg), str(cache.root), cache.enabled)
    results: dict[tuple, dict] = {}
    errors: dict[tuple, str] = {}
    bar = _progress(len(jobs), progress)
    workers = min(cfg.n_workers(), len(jobs))
    if workers <= 1:
        _init_worker(*init_args)
        for job in jobs:
            bar.set_postfix_str(_job_name(job))
            try:
                results[job[:4]] = run_job(job)
            except Exception as exc:  # one failing method must not sink the audit
                errors[job[:4]] = f"{type(exc).__name__}: {exc}"
                log.warning("%s failed: %s", _job_name(job), errors[job[:4]])
            bar.update(1)
        bar.close()
        return results, errors
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=init_args) as pool:
        pending = {pool.submit(run_job, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                job = pending.pop(fut)
                try:
                    results[job[:4]] = fut.result()
                except Exception as exc:
                    errors[job[:4]] = f"{type(exc).__name__}: {exc}"
                    log.warning("%s failed: %s", _job_name(job), errors[job[:4]])
                bar.set_postfix_str(_job_name(job))
                bar.update(1)
    bar.close()
    return results, errors


def _config_payload(cfg: AuditConfig) -> dict:
    return {"experiment": cfg.experiment.to_dict(), "shadow_models": cfg.shadow_models, "augment": cfg.augment}


def _job_name(job: tuple) -> str:
    kind, method, k, seed, _ = job
    return f"{method or kind} k={k} seed={seed}"


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
    jobs = _jobs(config, methods)
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
    audit = _analyse(config, methods, pieces, results, errors)
    audit["skipped_methods"] = skipped
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


def _analyse(cfg: AuditConfig, methods: list[str], pieces: dict, results: dict, errors: dict) -> dict[str, Any]:
    K, N = cfg.shadow_models, cfg.challenge_models
    data, keep, n_train = pieces["data"], pieces["keep"], pieces["n_train"]
    f_idx = data.forget_indices
    n_pool = keep.shape[1]
    member = np.zeros(n_pool, dtype=bool)
    member[:n_train] = True
    nonmember_idx = np.arange(n_train, n_pool)
    audit: dict[str, Any] = {"K": K, "N": N, "n_forget": int(len(f_idx)), "n_pool": int(n_pool),
                             "errors": {_job_name((*k, False)): v for k, v in errors.items()},
                             "per_example": {}, "roc": {}}

    def phi(key):
        r = results.get(key)
        return None if r is None else r["phi"]

    lira = None
    shadow = [phi(("shadow", "", k, SHADOW_SEED + k)) for k in range(K)] if cfg.lira else []
    if cfg.lira and all(s is not None for s in shadow):
        lira = LiRA.fit(np.stack(shadow), keep, cfg.variance)
        target = phi(("original", "", 0, 0))
        if target is not None:
            res = lira.attack(target, member)
            s = res.summary((0.01, 0.001))
            audit["lira_original"] = {**s, "variance": lira.variance, "K": K}
            fpr, tpr = res.roc()
            audit["roc"]["original (members: train)"] = _thin_roc(fpr, tpr)
    retrained = [phi(("retrain", "", j, j)) for j in range(max(K, N))]

    def unlearned_key(m, k, s):
        if m == "original":
            return ("original", "", k, k)
        if _is_plain_retrain(cfg, m):
            return ("unlearned", m, 0, s)
        return ("unlearned", m, k, s)

    rows = []
    for m in methods:
        row: dict[str, Any] = {"method": m, "scenario": cfg.experiment.scenario, "dataset": cfg.experiment.dataset,
                               "model": cfg.experiment.model, "seed": cfg.seed}
        main = results.get(unlearned_key(m, 0, UNLEARN_SEED))
        failed = [v for k, v in errors.items() if k[1] == m]
        if main is None or failed:
            row["error"] = failed[0] if failed else "no model"
            rows.append(row)
            continue
        # challenge models (the method from Original seed 0, N seeds)
        runs = [results.get(unlearned_key(m, 0, UNLEARN_SEED + j)) for j in range(N)] if cfg.challenge else [main]
        runs = [r for r in runs if r is not None] or [main]
        row.update(main["metrics"])
        row.update({n: float(np.mean([r["metrics"][n] for r in runs])) for n in PER_RUN_METRICS})
        row.update(main.get("extra", {}))
        times = [r["time_s"] for r in runs] if m != "original" else [0.0]
        row["time_s"] = float(np.mean(times))
        # a model loaded from the cache carries the time of the run that trained it: no speedup from it
        row["time_source"] = "cache" if m != "original" and any(r["cached"] for r in runs) else "measured"
        if lira is not None:
            target = main["phi"]
            scores = lira.score(target[np.r_[f_idx, nonmember_idx]], np.r_[f_idx, nonmember_idx])
            labels = np.r_[np.ones(len(f_idx)), np.zeros(len(nonmember_idx))]
            from ..evaluation.attacks.base import AttackResult

            res = AttackResult(scores, labels)
            s = res.summary((0.01,))
            row["lira_forget_auc"] = s["auc"]
            row["lira_forget_tpr_at_1pct_fpr"] = s["tpr_at_0.01_fpr"]
            row["lira_k"] = K
            fpr, tpr = res.roc()
            audit["roc"][f"{m} (members: forget)"] = _thin_roc(fpr, tpr)
            if m == "original" and "lira_original" in audit:
                lo = audit["lira_original"]
                row.update({"lira_auc": lo["auc"], "lira_balanced_acc": lo["balanced_acc"],
                            "lira_tpr_at_1pct_fpr": lo["tpr_at_0.01_fpr"],
                            "lira_tpr_at_0.1pct_fpr": lo["tpr_at_0.001_fpr"]})
        per_ex: dict[str, Any] = {}
        shared = None  # U-LiRA over the N challenge pairs (method from the one Original vs retrained)
        if cfg.challenge and cfg.ulira:
            u = [phi(unlearned_key(m, 0, UNLEARN_SEED + j)) for j in range(N)]
            rr = retrained[:N]
            if all(x is not None for x in u) and all(x is not None for x in rr):
                shared = ulira_leave_one_out(np.stack(u)[:, f_idx], np.stack(rr)[:, f_idx], cfg.variance)
                row["ulira_shared_acc"], row["ulira_shared_auc"] = shared.info["acc"], shared.info["auc"]
        if cfg.ulira and cfg.ulira_originals == "shadow":
            u = [phi(unlearned_key(m, k, UNLEARN_SEED + k)) for k in range(K)]
            rr = retrained[:K]
            if all(x is not None for x in u) and all(x is not None for x in rr):
                ul = ulira_leave_one_out(np.stack(u)[:, f_idx], np.stack(rr)[:, f_idx], cfg.variance)
                row["ulira_acc"], row["ulira_auc"], row["ulira_k"] = ul.info["acc"], ul.info["auc"], K
                row["ulira_originals"] = "shadow"
                per_ex["ulira_acc"] = ul.per_example["acc"]
        elif shared is not None:
            row["ulira_acc"], row["ulira_auc"], row["ulira_k"] = shared.info["acc"], shared.info["auc"], N
            row["ulira_originals"] = "shared"
            per_ex["ulira_acc"] = shared.per_example["acc"]
        if cfg.challenge:
            u = [r["phi"][f_idx] for r in runs]
            rr = [x[f_idx] for x in retrained[:N] if x is not None]
            rt = [results[("retrain", "", j, j)] for j in range(N) if ("retrain", "", j, j) in results]
            if len(u) >= 3 and len(rr) >= 3:
                accs = [[r["metrics"][n] for r in group] for n in ("retain_acc", "test_acc") for group in (runs, rt)]
                cs = challenge_score(np.stack(u), np.stack(rr), *accs)
                cp = challenge_score(np.stack(u), np.stack(rr), *accs, rates="clopper_pearson")
                row["forgetting_quality"] = cs.forgetting_quality
                row["challenge_score"] = cs.score
                row["forgetting_quality_cp"] = cp.forgetting_quality
                row["challenge_score_cp"] = cp.score
                row["challenge_n"] = min(len(u), len(rr))
                row["mean_epsilon"] = float(np.mean(cs.epsilons))
                per_ex["epsilon"] = cs.epsilons
                per_ex["epsilon_cp"] = cp.epsilons
        audit["per_example"][m] = per_ex
        rows.append(row)
    audit["rows"] = rows
    audit["forget_indices"] = f_idx.tolist()
    return audit


def _thin_roc(fpr: np.ndarray, tpr: np.ndarray, max_points: int = 400) -> dict[str, list[float]]:
    if len(fpr) > max_points:
        idx = np.unique(np.r_[np.geomspace(1, len(fpr) - 1, max_points).astype(int), 0, len(fpr) - 1])
        fpr, tpr = fpr[idx], tpr[idx]
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


class _NullBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix_str(self, s: str) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NullBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="audit models")


__all__ = ["AuditConfig", "audit", "run_audit", "run_job", "runnable_methods"]
