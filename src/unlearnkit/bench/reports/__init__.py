"""Reports: result rows in, summaries over seeds, Markdown tables, plots and HTML pages out.

Nothing here trains, unlearns or reads a store: the callers hand over rows (``summary``: one
experiment's report; ``leaderboard``: a benchmark's; ``audit``: the per-example audit's)."""

from .audit import audit_table, write_audit_outputs
from .leaderboard import markdown_leaderboard, summaries, write_report
from .summary import markdown_table, summarize, write_outputs

__all__ = ["audit_table", "markdown_leaderboard", "markdown_table", "summaries", "summarize", "write_audit_outputs",
           "write_outputs", "write_report"]
