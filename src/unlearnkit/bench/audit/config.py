"""``AuditConfig``: what an audit runs (the experiment, the attack sizes) and where."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from ...errors import UnlearnkitError
from ..pipeline.backends import get_backend
from ..pipeline.config import ExperimentConfig
from ..pipeline.runtime import plan_workers


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
    #: train same-shape models in stacks (stacked.py); False = one by one
    vectorize: bool = True
    backend: str = "local"       # where the jobs run (pipeline/backends.py): local or ray
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
