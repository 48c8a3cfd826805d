"""Event-name patterns with EventEmitter2's documented wildcard rule.

``*`` matches exactly one segment and ``**`` matches zero or more segments, so ``user.**``
matches ``user`` and ``user.a.b``, ``**.created`` matches ``created``, ``a.**.b`` matches
``a.b``, and ``**.**`` matches every name. Matching works on whole segments only.
"""

from __future__ import annotations

from functools import lru_cache

ONE = "*"
ANY = "**"


def is_pattern(name: str, delimiter: str = ".") -> bool:
    """Tell whether ``name`` has a wildcard segment."""
    return "*" in name and any(seg in (ONE, ANY) for seg in name.split(delimiter))


def match_segments(pattern: tuple[str, ...], name: tuple[str, ...]) -> bool:
    """Tell whether the segments of ``name`` match the segments of ``pattern``.

    A dynamic programme over segments: ``reach[j]`` says whether the pattern read so far can
    consume exactly the first ``j`` name segments. It is linear in each dimension, so no pattern
    can make it backtrack exponentially.
    """
    size = len(name)
    reach = [True] + [False] * size
    for segment in pattern:
        if segment == ANY:
            running = False
            for j in range(size + 1):
                running = running or reach[j]
                reach[j] = running
        else:
            nxt = [False] * (size + 1)
            for j in range(1, size + 1):
                if reach[j - 1] and (segment == ONE or segment == name[j - 1]):
                    nxt[j] = True
            reach = nxt
        if not any(reach):
            return False
    return reach[size]


@lru_cache(maxsize=4096)
def matches(pattern: str, name: str, delimiter: str = ".") -> bool:
    """Tell whether the concrete event ``name`` matches ``pattern`` (cached)."""
    if pattern == name:
        return True
    return match_segments(tuple(pattern.split(delimiter)), tuple(name.split(delimiter)))
