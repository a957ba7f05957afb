"""Plot helpers shared by every report: one distinct style per method and labels that never overlap.

Reports compare up to twenty-odd methods whose points often coincide (a method that changes nothing
sits on top of ``original``). A colour cycle of ten repeats and labels written at a fixed offset
print over each other, so every scatter in unlearnkit goes through :func:`scatter_methods`: each
method gets its own colour *and* marker, and each label is moved to the first nearby position where
its box overlaps no label placed before it.
"""

from __future__ import annotations

from typing import Iterable, Sequence

#: marker shapes, combined with a 20-colour palette, so no two of the first 20 x 10 methods look alike
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")

#: label offsets tried in order (points from the data point): right, above, left, below, then further out
_OFFSETS = [(6, 4), (6, -12), (-6, 4), (-6, -12), (6, 14), (-6, 14), (6, -22), (-6, -22)]
_OFFSETS += [(dx, dy) for r in (2, 3, 4, 5, 6) for dx, dy in ((8 * r, 0), (0, 10 * r), (-8 * r, 0), (0, -10 * r),
                                                             (8 * r, 10 * r), (-8 * r, -10 * r))]


def method_styles(methods: Iterable[str]) -> dict[str, dict]:
    """A distinct ``color``/``marker`` pair per method, stable for a given order of names."""
    import matplotlib

    palette = matplotlib.colormaps["tab20"].colors
    styles = {}
    for i, name in enumerate(dict.fromkeys(methods)):
        styles[name] = {"color": palette[i % len(palette)], "marker": _MARKERS[(i // len(palette) + i) % len(_MARKERS)]}
    return styles


def _overlaps(box, others, pad: float = 1.0) -> bool:
    return any(box.x0 < o.x1 + pad and box.x1 > o.x0 - pad and box.y0 < o.y1 + pad and box.y1 > o.y0 - pad
               for o in others)


def place_labels(ax, points: Sequence[tuple[str, float, float]], fontsize: float = 8) -> list:
    """Annotate each ``(label, x, y)`` at the first candidate offset whose text box overlaps no
    earlier label; returns the annotations. Positions are decided in display space, so call this after
    the axes limits and scales are final."""
    fig = ax.figure
    fig.canvas.draw()  # fixes limits and transforms so text extents are real
    renderer = fig.canvas.get_renderer()
    placed_boxes, texts = [], []
    for label, x, y in points:
        text = None
        for dx, dy in _OFFSETS:
            if text is not None:
                text.remove()
            text = ax.annotate(label, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize,
                               ha="left" if dx >= 0 else "right", va="bottom" if dy >= 0 else "top",
                               arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.5"} if abs(dx) + abs(dy) > 20
                               else None)
            box = text.get_window_extent(renderer)
            if not _overlaps(box, placed_boxes):
                break
        placed_boxes.append(text.get_window_extent(renderer))
        texts.append(text)
    return texts


def scatter_methods(ax, points: Sequence[tuple[str, float, float]], styles: dict[str, dict],
                    size: float = 40) -> list:
    """Scatter ``(method, x, y)`` points in each method's style, then label them without overlaps."""
    for name, x, y in points:
        style = styles.get(name, {"color": "0.3", "marker": "o"})
        ax.scatter([x], [y], s=size, color=style["color"], marker=style["marker"], edgecolors="0.2",
                   linewidths=0.4, zorder=3)
    ax.margins(0.12)  # room for labels beside the outermost points
    return place_labels(ax, points)
