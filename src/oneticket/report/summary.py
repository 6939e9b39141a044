"""The few sentences a report opens with: what each panel shows, computed from its numbers.

Per panel (model, target, training optimizer): the dense network (the own ticket's level 0), how
far each transferred ticket stays within ``TOLERANCE`` points of the own ticket (or above it),
how far the random tickets (permutations of the own ticket's mask) fall behind it at the highest
sparsity both reached, and which points lost seeds to diverged trainings; each number with its
mean, standard deviation and seed count. Levels without an own-ticket result are named, never
silently skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from oneticket.experiments import Line

TOLERANCE = 1.0  # points of test accuracy: "within a point of the own ticket"


@dataclass(frozen=True)
class Point:
    fraction_pruned: float
    mean: float  # percent
    std: float
    seeds: int

    def text(self) -> str:
        return f"{self.mean:.1f} ± {self.std:.1f}%" if self.seeds > 1 else f"{self.mean:.1f}%"


def points(line: Line) -> dict[int, Point]:
    return {level: Point(f, 100 * m, 100 * s, n)
            for level, f, m, s, n in zip(line.levels, line.fraction_pruned, line.mean, line.std, line.seeds)}


NEAR = 1.1  # two points are at the same sparsity when their fractions of weights left differ by at most this factor


def sparsity_distance(a: float, b: float) -> float:
    """How far apart two fractions pruned are: |log| of the ratio of the fractions of weights left."""
    return abs(math.log(max(1.0 - a, 1e-12) / max(1.0 - b, 1e-12)))


def matched(line: Line, reference: Line) -> dict[int, Point]:
    """The reference's point at the sparsity of each of ``line``'s levels (matched by the fraction
    pruned, not the level number: finders and IMP number their levels differently)."""
    theirs = list(points(reference).values())
    out = {}
    for level, fraction in zip(line.levels, line.fraction_pruned):
        nearest = min(theirs, key=lambda p: sparsity_distance(p.fraction_pruned, fraction), default=None)
        if nearest is not None and sparsity_distance(nearest.fraction_pruned, fraction) <= math.log(NEAR):
            out[level] = nearest
    return out


def pruned(fraction: float) -> str:
    """``0.93749 -> "93.75% pruned"``, ``0.75 -> "75% pruned"``."""
    return f"{100 * fraction:.2f}".rstrip("0").rstrip(".") + "% pruned"


def seed_count(lines: list[Line]) -> str:
    counts = sorted({n for line in lines for n in line.seeds})
    if not counts:
        return "no seeds"
    text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"{text} seed{'s' if counts[-1] > 1 else ''}"


def dense_reference(lines: list[Line]) -> Point | None:
    """The dense network of a panel: level 0 of its own ticket's run."""
    owns = [line for line in lines if line.kind == "own"]
    own = next((line for line in owns if line.finder == "imp"), owns[0] if owns else None)
    return None if own is None else points(own).get(0)


def _missing(levels: list[int], line: Line) -> str:
    """``"; no own-ticket result at 98.44% pruned yet"`` for levels the comparison lacks."""
    if not levels:
        return ""
    where = ", ".join(pruned(line.fraction_pruned[line.levels.index(lv)]) for lv in levels)
    return f"; no own-ticket result at {where} yet"


def transfer_sentence(line: Line, own: Line, ref: str = "the own ticket") -> str:
    """How closely a transferred ticket (or another finder's) follows the own ticket, sparsity by sparsity."""
    mine, theirs = points(line), matched(line, own)
    common = sorted((lv for lv in mine if lv in theirs and lv > 0), key=lambda lv: mine[lv].fraction_pruned)
    uncompared = sorted((lv for lv in mine if lv not in theirs and lv > 0), key=lambda lv: mine[lv].fraction_pruned)
    if not common:
        return f"{line.label}: no level in common with {ref} yet."
    holds = [lv for lv in common if mine[lv].mean >= theirs[lv].mean - TOLERANCE]
    first_miss = next((lv for lv in common if lv not in holds), None)
    top = common[-1]
    at_top = f"at {pruned(mine[top].fraction_pruned)} {mine[top].text()} vs {theirs[top].text()}"
    if first_miss is None:
        return (f"{line.label}: within {TOLERANCE:g} point of {ref} or above it at every level compared, "
                f"up to {pruned(mine[top].fraction_pruned)} ({at_top}){_missing(uncompared, line)}.")
    last_good = [lv for lv in common if mine[lv].fraction_pruned < mine[first_miss].fraction_pruned]
    lead = (f"within {TOLERANCE:g} point of {ref} or above it up to {pruned(mine[last_good[-1]].fraction_pruned)}"
            if last_good else f"already more than {TOLERANCE:g} point below {ref} at its first level compared "
                              f"({pruned(mine[first_miss].fraction_pruned)})")
    misses = [lv for lv in common if lv not in holds]
    worst = max(misses, key=lambda lv: theirs[lv].mean - mine[lv].mean)
    where = ", ".join(f"{100 * mine[lv].fraction_pruned:.2f}".rstrip("0").rstrip(".") + "%" for lv in misses)
    count = f"{len(misses)} of {len(common)} levels" if len(common) > 1 else "the one level compared"
    text = (f"{line.label}: {lead}; more than {TOLERANCE:g} point below it at {count} "
            f"({where}), by at most {theirs[worst].mean - mine[worst].mean:.1f} points "
            f"(at {pruned(mine[worst].fraction_pruned)}: {mine[worst].text()} vs {theirs[worst].text()})")
    return text + ("" if worst == top else f"; {at_top}") + _missing(uncompared, line) + "."


def random_sentence(line: Line, own: Line, ref: str = "the own ticket") -> str:
    """How far a random-ticket baseline falls behind the own ticket (whose mask it permutes), at
    the highest sparsity both reached."""
    mine, theirs = points(line), matched(line, own)
    common = [lv for lv in mine if lv in theirs]
    if not common:
        return f"{line.label}: no level in common with {ref} yet."
    top = max(common, key=lambda lv: mine[lv].fraction_pruned)
    higher = sorted((lv for lv in mine if lv not in theirs and mine[lv].fraction_pruned > mine[top].fraction_pruned),
                    key=lambda lv: mine[lv].fraction_pruned)
    gap = theirs[top].mean - mine[top].mean
    where = "behind" if gap >= 0 else "ahead of"
    return (f"{line.label}: {abs(gap):.1f} points {where} {ref} at {pruned(mine[top].fraction_pruned)} "
            f"({mine[top].text()} vs {theirs[top].text()}){_missing(higher, line)}.")


def diverged_sentence(line: Line) -> str | None:
    """Which points lost seeds to a diverged training (those seeds are left out of the means)."""
    if not line.diverged:
        return None
    seeds = dict(zip(line.levels, line.seeds))
    parts = [f"{count} of {count + seeds.get(level, 0)} seed(s) at {pruned(fraction)}"
             for level, (fraction, count) in sorted(line.diverged.items())]
    return f"{line.label}: training diverged for {', '.join(parts)} (left out of the means)."


CHANCE_MARGIN = 0.02  # a seed within this of 1 / classes has learned nothing


def chance_sentence(line: Line, classes: int) -> str | None:
    """Points where some seeds stayed at chance: the mean and spread hide a collapse there."""
    chance = 1.0 / classes
    parts = []
    for fraction, values in zip(line.fraction_pruned, line.per_seed):
        stuck = [v for v in values if v <= chance + CHANCE_MARGIN]
        if stuck and len(values) > 1:
            parts.append(f"{len(stuck)} of {len(values)} seeds at {pruned(fraction)} "
                         f"({', '.join(f'{100 * v:.1f}%' for v in stuck)})")
    if not parts:
        return None
    return (f"{line.label}: stayed at chance ({100 * chance:.0f}%) for {'; '.join(parts)}; "
            "the other seeds: " + "; ".join(_others(line, chance)) + ".")


def _others(line: Line, chance: float) -> list[str]:
    out = []
    for fraction, values in zip(line.fraction_pruned, line.per_seed):
        stuck = [v for v in values if v <= chance + CHANCE_MARGIN]
        rest = [v for v in values if v > chance + CHANCE_MARGIN]
        if stuck and len(values) > 1:
            out.append(f"{', '.join(f'{100 * v:.1f}%' for v in rest) or 'none'} at {pruned(fraction)}")
    return out


def panel_summary(lines: list[Line], classes: int | None = None) -> list[str]:
    """The sentences for one panel's lines."""
    sentences = []
    dense = dense_reference(lines)
    owns = [line for line in lines if line.kind == "own" and line.levels]
    own = next((line for line in owns if line.finder == "imp"), owns[0] if owns else None)
    if dense is not None:
        sentences.append(f"dense network (level 0): {dense.text()}.")
    if own is None:
        sentences.append("no own ticket (found on this target) in this panel yet; the other lines are compared with it once it has results.")
    else:
        others = [line for line in lines if line is not own and line.kind in ("own", "transfer") and line.levels]
        ref = "the own IMP ticket" if len(owns) > 1 else "the own ticket"
        sentences += [transfer_sentence(line, own, ref) for line in others]
        sentences += [random_sentence(line, own, ref) for line in lines if line.kind not in ("own", "transfer") and line.levels]
    sentences += [text for line in lines if (text := diverged_sentence(line)) is not None]
    if classes is not None:
        sentences += [text for line in lines if (text := chance_sentence(line, classes)) is not None]
    return sentences
