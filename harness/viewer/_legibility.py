"""Whether a drawing can be read: nothing outside the canvas, no box on another box, no
label on another label or on a box it does not name, no line through a box or a label
it does not join, each external frame holding only external providers.

The player's tests hold the shipped topology's drawing to this; the browser test checks
the same on what the browser really rendered.
"""

from __future__ import annotations

import itertools

from ._geometry import Rect, segment_hits_rect
from ._layout import Drawing

__all__ = ["drawing_problems"]


def _boxes(drawing: Drawing, canvas: Rect) -> list[str]:
    found = [
        f"box {n.name} is outside the canvas"
        for n in drawing.nodes.values()
        if not n.rect.inside(canvas)
    ]
    for a, b in itertools.combinations(drawing.nodes.values(), 2):
        if a.rect.grow(2).overlaps(b.rect):
            found.append(f"boxes {a.name} and {b.name} overlap")
    for frame, title in drawing.frames:
        found += [
            f"frame {title.text!r} covers box {n.name}"
            for n in drawing.nodes.values()
            if n.kind != "external" and frame.overlaps(n.rect)
        ]
    return found


def _labels(drawing: Drawing, canvas: Rect) -> list[str]:
    found: list[str] = []
    labels = drawing.all_labels()
    for label in labels:
        if not label.rect.inside(canvas):
            found.append(f"label {label.text!r} is outside the canvas")
        if label.owner is not None and not label.rect.inside(drawing.nodes[label.owner].rect):
            found.append(f"label {label.text!r} does not fit in its box")
        found += [
            f"label {label.text!r} overlaps box {n.name}"
            for n in drawing.nodes.values()
            if n.name != label.owner and label.rect.overlaps(n.rect)
        ]
    for a, b in itertools.combinations(labels, 2):
        if a.rect.overlaps(b.rect):
            found.append(f"labels {a.text!r} and {b.text!r} overlap")
    return found


def _lines(drawing: Drawing) -> list[str]:
    found: list[str] = []
    labels = drawing.all_labels()
    for edge in drawing.edges:
        ends = (edge.source, edge.target)
        for a, b in edge.segments():
            found += [
                f"edge {edge.key} crosses box {n.name}"
                for n in drawing.nodes.values()
                if n.name not in ends and segment_hits_rect(a, b, n.rect)
            ]
            found += [
                f"edge {edge.key} crosses label {lb.text!r}"
                for lb in labels
                if lb.owner not in ends and segment_hits_rect(a, b, lb.rect)
            ]
    return found


def drawing_problems(drawing: Drawing) -> list[str]:
    """Everything that makes ``drawing`` hard to read, sorted; empty when it is clean."""
    canvas = Rect(0, 0, drawing.width, drawing.height)
    return sorted(set(_boxes(drawing, canvas) + _labels(drawing, canvas) + _lines(drawing)))
