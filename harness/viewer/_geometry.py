"""Plain 2-D geometry for the topology drawing: rectangles, segments, and the checks that
keep a drawing legible (nothing overlaps, no edge runs through a box it does not join)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Point", "Rect", "segment_hits_rect", "text_width"]

Point = tuple[float, float]

# Average advance of a character, in ems, for the sans-serif faces browsers fall back to
# (DejaVu Sans, Liberation Sans, Helvetica): generous, so an estimate never undershoots.
_EM_PER_CHAR = 0.62


def text_width(text: str, size: float) -> float:
    """An upper estimate of the rendered width of ``text`` at font ``size`` px."""
    return len(text) * size * _EM_PER_CHAR


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float

    @classmethod
    def centred(cls, cx: float, cy: float, w: float, h: float) -> Rect:
        return cls(cx - w / 2, cy - h / 2, w, h)

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    def grow(self, by: float) -> Rect:
        return Rect(self.x - by, self.y - by, self.w + 2 * by, self.h + 2 * by)

    def overlaps(self, other: Rect) -> bool:
        """True when the interiors intersect (touching edges do not count)."""
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )

    def inside(self, other: Rect) -> bool:
        return (
            self.x >= other.x
            and self.y >= other.y
            and self.right <= other.right
            and self.bottom <= other.bottom
        )

    def boundary_towards(self, target: Point) -> Point:
        """Where the line from the centre to ``target`` leaves this rectangle."""
        dx, dy = target[0] - self.cx, target[1] - self.cy
        if dx == 0 and dy == 0:
            return (self.cx, self.cy)
        scale = min(
            (self.w / 2) / abs(dx) if dx else float("inf"),
            (self.h / 2) / abs(dy) if dy else float("inf"),
        )
        return (self.cx + dx * scale, self.cy + dy * scale)


def segment_hits_rect(a: Point, b: Point, rect: Rect) -> bool:
    """True when the segment a-b passes through the interior of ``rect``
    (Liang-Barsky clipping against the open rectangle)."""
    t0, t1 = 0.0, 1.0
    dx, dy = b[0] - a[0], b[1] - a[1]
    for p, q in (
        (-dx, a[0] - rect.x),
        (dx, rect.right - a[0]),
        (-dy, a[1] - rect.y),
        (dy, rect.bottom - a[1]),
    ):
        if p == 0:
            if q <= 0:
                return False
            continue
        t = q / p
        if p < 0:
            if t > t1:
                return False
            t0 = max(t0, t)
        else:
            if t < t0:
                return False
            t1 = min(t1, t)
    return t1 - t0 > 1e-9
