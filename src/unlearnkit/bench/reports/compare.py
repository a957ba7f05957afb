"""``compare.html``: one self-contained interactive page comparing a method with Retrain and the Original.

The page is one file: the data as JSON, the page's script and style (``templates/``) and the plotly.js
bundle that the ``plotly`` Python package ships, embedded, so it opens from disk with no server and
loads nothing from the network. Its script draws five views (ids ``per-class``,
``prediction-matrix``, ``embedding``, ``layer-similarity``, ``per-example``) for the method chosen
on the page and marks ``<body data-status="ok">`` once every one has rendered, or
``data-status="failed: VIEW: reason; ..."``.

The numbers come from ``evaluation.comparison`` (computed by the pipeline while the models exist and
saved beside the results as ``compare/*.json``); ``load_comparison`` reads them back, so the page can
be rebuilt from an output folder alone.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Optional

from ...errors import UnlearnkitError
from ...utils import atomic_write_text, to_jsonable

log = logging.getLogger(__name__)

COMPARE_DIR = "compare"
#: the five views, in page order
VIEW_IDS = ("per-class", "prediction-matrix", "embedding", "layer-similarity", "per-example")
REFERENCES = ("original", "retrain")
#: summary metrics shown beside the chosen method
SUMMARY_METRICS = ("forget_acc", "retain_acc", "test_acc", "mia_efficacy", "time_s")


def _read(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:  # a damaged record: the page goes on without it
        log.warning("ignoring unreadable comparison record %s (%s)", path, exc)
        return None


def load_comparison(out: str | Path, seed: int, methods: Iterable[str]) -> Optional[dict[str, Any]]:
    """The page's data from an output folder: the seed's shared record, the view of each of
    ``methods`` that has a record, and the seed-mean metrics from ``results.json`` when present.
    None when the folder holds no comparison of ``seed``."""
    out = Path(out)
    shared = _read(out / COMPARE_DIR / f"seed{seed}.json")
    if shared is None:
        return None
    views = dict(shared.pop("views"))
    for m in methods:
        record = _read(out / COMPARE_DIR / f"{m}.seed{seed}.json")
        if record is not None:
            views[m] = record["view"]
    order = [m for m in methods if m in views and m not in REFERENCES]
    data = {**shared, "views": views, "methods": order, "summary": _summary(out / "results.json")}
    return data


def _summary(path: Path) -> dict[str, dict[str, float]]:
    results = _read(path) or {}
    out = {}
    for entry in results.get("summary", []):
        if entry.get("request") is None:
            out[entry["method"]] = {k: v for k, v in entry.get("mean", {}).items() if k in SUMMARY_METRICS}
            if entry.get("avg_gap") is not None:
                out[entry["method"]]["avg_gap"] = entry["avg_gap"]
    return out


def _template(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as exc:
        raise UnlearnkitError("writing compare.html needs the plotly package (pip install plotly)") from exc
    return get_plotlyjs()


def _json_for_script(data: Any) -> str:
    """JSON that cannot close its <script> element early."""
    return json.dumps(to_jsonable(data), separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def render_compare_page(data: dict[str, Any]) -> str:
    """The page's HTML for ``data`` (as ``load_comparison`` returns, plus ``title`` and ``context``)."""
    if not data.get("views") or "original" not in data["views"]:
        raise UnlearnkitError("a comparison page needs at least the Original's view")
    data = {**data, "view_ids": list(VIEW_IDS)}
    page = _template("compare.html")
    parts = {"{{TITLE}}": _escape(data.get("title", "unlearnkit comparison")), "{{CSS}}": _template("compare.css"),
             "{{DATA}}": _json_for_script(_nan_to_none(data)), "{{APP}}": _template("compare.js"),
             "{{PLOTLY}}": _plotly_js()}
    for key in ("{{TITLE}}", "{{CSS}}", "{{DATA}}", "{{APP}}"):  # plotly.js last: its text is not scanned
        page = page.replace(key, parts[key])
    return page.replace("{{PLOTLY}}", parts["{{PLOTLY}}"], 1)


def write_compare_page(data: dict[str, Any], path: str | Path) -> Path:
    """Write ``render_compare_page(data)`` to ``path`` (atomically) and return the path."""
    path = Path(path)
    atomic_write_text(path, render_compare_page(data))
    log.info("comparison page: %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def _escape(text: str) -> str:
    import html

    return html.escape(str(text))


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value
