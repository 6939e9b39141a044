"""The report's computed summary says what the numbers say, in every case: a ticket above or below
the own ticket, the own ticket missing or at fewer levels, diverged seeds."""

from __future__ import annotations

from oneticket.experiments import Line
from oneticket.report.summary import panel_summary, pruned

PRUNED = {0: 0.0, 1: 0.75, 2: 0.9375, 3: 0.984375}


def line(kind: str, accuracies: dict[int, float], label: str | None = None, std: float = 0.01, seeds: int = 3,
         diverged: dict[int, int] | None = None) -> Line:
    levels = sorted(accuracies)
    return Line("x", ("vgg19", "digitsb", "sgd"), label or f"{kind} ticket", kind, levels, [PRUNED[lv] for lv in levels],
                [accuracies[lv] for lv in levels], [std] * len(levels), [seeds] * len(levels),
                {lv: (PRUNED[lv], n) for lv, n in (diverged or {}).items()})


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
    assert sentence == ("transfer ticket: within 1 point of the own ticket or above it up to 75% pruned; 2.5 points below "
                        "it at 93.75% pruned (95.0 ± 1.0% vs 97.5 ± 1.0%); at 98.44% pruned 93.0 ± 1.0% vs 94.0 ± 1.0%.")
    first_level_miss = panel_summary([line("transfer", {1: 0.9, 2: 0.97, 3: 0.94}), OWN])[1]
    assert "or above it at no level; 8.0 points below it at 75% pruned" in first_level_miss


def test_a_ticket_above_the_own_ticket_counts_as_within():
    transfer = line("transfer", {2: 0.99, 3: 0.97})
    assert "within 1 point of the own ticket or above it at every level compared, up to 98.44% pruned" in panel_summary([transfer, OWN])[1]


def test_own_ticket_not_finished_is_said_and_nothing_is_compared_with_another_line():
    transfer = line("transfer", {1: 0.98, 2: 0.97})
    random = line("random", {1: 0.96, 2: 0.2})
    assert panel_summary([transfer, random]) == [
        "own ticket: no finished level yet; the other lines are compared with it once it has some."]


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
