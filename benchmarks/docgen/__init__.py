"""The benchmark documents, generated from the committed results (``results/``) by ``make tables``.

``records`` loads what ``benchmarks/record.py`` kept (a store dump or a run's results.json, with its
provenance); ``tables`` and ``figures`` turn rows into Markdown tables and SVG plots with the
package's own report code; ``pages`` fills the templates in ``benchmarks/pages/`` (prose with
``{{ directive ... }}`` lines) and writes ``BENCHMARKS.md`` and ``docs/benchmarks/*.md``."""
