"""The per-example audit: LiRA against the Original, U-LiRA and the challenge's forgetting quality
per method, from many models (``config`` says how many; ``jobs`` builds or loads each through the
model cache; ``stacked`` trains same-shape ones in stacks first; ``analysis`` turns their statistics
into rows; ``run`` drives it)."""

from .config import AuditConfig
from .run import audit, run_audit, runnable_methods

__all__ = ["AuditConfig", "audit", "run_audit", "runnable_methods"]
