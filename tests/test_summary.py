"""The report's computed summary says what the numbers say, in every case: a ticket above or below
the own ticket, the own ticket missing or at fewer levels, diverged seeds."""

from __future__ import annotations

from oneticket.experiments import Line
from oneticket.report.summary import panel_summary, pruned

PRUNED = {0: 0.0, 1: 0.75, 2: 0.9375, 3: 0.984375}


def line(kind: str, accuracies: dict[int, float], label: str | None = None, std: float = 0.01, seeds: int = 3,
         diverged: dict[int, int] | None = None, per_seed: dict[int, list[float]] | None = None) -> Line:
    levels = sorted(accuracies)
    return Line("x", ("vgg19", "digitsb", "sgd"), label or f"{kind} ticket", kind, levels, [PRUNED[lv] for lv in levels],
                [accuracies[lv] for lv in levels], [std] * len(levels), [seeds] * len(levels),
                per_seed=[(per_seed or {}).get(lv, [accuracies[lv]] * seeds) for lv in levels],
                diverged={lv: (PRUNED[lv], n) for lv, n in (diverged or {}).items()})


OWN = line("own", {0: 0.98, 1: 0.98, 2: 0.975, 3: 0.94})


def test_pruned_keeps_two_decimals():
    assert pruned(0.9375) == "93.75% pruned" and pruned(0.75) == "75% pruned" and pruned(0.98437) == "98.44% pruned"


def test_dense_transfer_within_and_random_behind():
    transfer = line("transfer", {1: 0.979, 2: 0.97, 3: 0.935}, "ticket from digitsa (sgd)")
    random = line("random", {1: 0.96, 2: 0.94, 3: 0.58}, std=0.4)
    text = panel_summary([transfer, OWN, random])
    assert text[0] == "dense network (level 0): 98.0 ± 1.0%."
    assert text[1] == ("ticket from digitsa (sgd): within 1 point of the own ticket or above it at every level compared, "
                       "up to 98.44% pruned (at 98.44% pruned 93.5 ± 1.0% vs 94.0 ± 1.0%).")
    assert text[2] == "random ticket: 36.0 points behind the own ticket at 98.44% pruned (58.0 ± 40.0% vs 94.0 ± 1.0%)."


def test_a_ticket_that_falls_behind_is_named_where():
    transfer = line("transfer", {1: 0.98, 2: 0.95, 3: 0.93})
    (sentence,) = panel_summary([transfer, OWN])[1:]
    assert sentence == ("transfer ticket: within 1 point of the own ticket or above it up to 75% pruned; more than 1 point "
                        "below it at 1 of 3 levels (93.75%), by at most 2.5 points (at 93.75% pruned: 95.0 ± 1.0% vs "
                        "97.5 ± 1.0%); at 98.44% pruned 93.0 ± 1.0% vs 94.0 ± 1.0%.")
    first_level_miss = panel_summary([line("transfer", {1: 0.9, 2: 0.97, 3: 0.92}), OWN])[1]
    assert first_level_miss == ("transfer ticket: already more than 1 point below the own ticket at its first level compared "
                                "(75% pruned); "
                                "more than 1 point below it at 2 of 3 levels (75%, 98.44%), by at most 8.0 points "
                                "(at 75% pruned: 90.0 ± 1.0% vs 98.0 ± 1.0%); at 98.44% pruned 92.0 ± 1.0% vs 94.0 ± 1.0%.")


def test_a_ticket_above_the_own_ticket_counts_as_within():
    transfer = line("transfer", {2: 0.99, 3: 0.97})
    assert "within 1 point of the own ticket or above it at every level compared, up to 98.44% pruned" in panel_summary([transfer, OWN])[1]


def test_own_ticket_not_finished_is_said_and_nothing_is_compared_with_another_line():
    transfer = line("transfer", {1: 0.98, 2: 0.97})
    random = line("random", {1: 0.96, 2: 0.2})
    assert panel_summary([transfer, random]) == [
        "no own ticket (found on this target) in this panel yet; the other lines are compared with it once it has results."]


def test_levels_the_own_ticket_has_not_reached_are_named():
    own = line("own", {0: 0.98, 1: 0.98})
    transfer = line("transfer", {1: 0.98, 2: 0.97, 3: 0.93})
    random = line("random", {1: 0.97, 3: 0.6})
    text = panel_summary([transfer, own, random])
    assert text[1].endswith("up to 75% pruned (at 75% pruned 98.0 ± 1.0% vs 98.0 ± 1.0%); "
                            "no own-ticket result at 93.75% pruned, 98.44% pruned yet.")
    assert text[2] == ("random ticket: 1.0 points behind the own ticket at 75% pruned (97.0 ± 1.0% vs 98.0 ± 1.0%); "
                       "no own-ticket result at 98.44% pruned yet.")


def test_a_random_ticket_ahead_says_ahead():
    random = line("random", {3: 0.95})
    assert panel_summary([OWN, random])[1] == \
        "random ticket: 1.0 points ahead of the own ticket at 98.44% pruned (95.0 ± 1.0% vs 94.0 ± 1.0%)."


def test_diverged_seeds_are_counted_not_hidden():
    transfer = line("transfer", {1: 0.98, 2: 0.97}, seeds=2, diverged={2: 1, 3: 3})
    text = panel_summary([transfer, OWN])
    assert text[-1] == ("transfer ticket: training diverged for 1 of 3 seed(s) at 93.75% pruned, "
                        "3 of 3 seed(s) at 98.44% pruned (left out of the means).")


def test_seeds_stuck_at_chance_are_named_with_the_others():
    random = line("random", {1: 0.96, 3: 0.58}, std=0.4,
                  per_seed={1: [0.97, 0.95, 0.96], 3: [0.86, 0.099, 0.79]})
    text = panel_summary([OWN, random], classes=10)
    assert text[-1] == ("random ticket: stayed at chance (10%) for 1 of 3 seeds at 98.44% pruned (9.9%); "
                        "the other seeds: 86.0%, 79.0% at 98.44% pruned.")
    assert not any("chance" in t for t in panel_summary([OWN, random], classes=None))


def test_one_level_in_common_is_not_counted_as_one_of_one():
    transfer = line("transfer", {3: 0.9})
    assert "more than 1 point below it at the one level compared (98.44%)" in panel_summary([transfer, OWN])[1]
