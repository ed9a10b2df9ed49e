"""One race across families: successive halving over MLP archs and trees configurations at once
(no database; synthetic data)."""

from __future__ import annotations

import pytest
import torch

from trails.families import Candidate, MlpFamily, ModelHyper, get_family, parse_candidate, register_family
from trails.families.gbdt import portfolio
from trails.families.gbdt_config import variations
from trails.refinement.data import SplitTensors
from trails.refinement.halving import successive_halving
from trails.refinement.trainer import TrainingSettings

N_FIELDS, CARDINALITY = 4, 20
N_IDS = N_FIELDS * CARDINALITY + 2 * N_FIELDS
SETTINGS = TrainingSettings(batch_size=128, iter_per_epoch=10, rounds_per_unit=5)


def split(rows: int, seed: int) -> SplitTensors:
    """Rows whose label is an interaction trees find at once (field 0 below half)."""
    g = torch.Generator().manual_seed(seed)
    local = torch.randint(0, CARDINALITY, (rows, N_FIELDS), generator=g)
    ids = local + torch.arange(N_FIELDS) * CARDINALITY
    labels = ((local[:, 0] < CARDINALITY // 2) ^ (local[:, 1] < 3)).long()
    return SplitTensors(ids, torch.ones(rows, N_FIELDS), labels)


@pytest.fixture(scope="module")
def race():
    candidates = [Candidate("mlp", (16, 8)), Candidate("gbdt", portfolio(1)[0]), Candidate("mlp", (8,)),
                  Candidate("gbdt", portfolio(2)[1])]
    train, valid = split(3000, 0), split(1000, 1)
    result = successive_halving(candidates, train, valid, N_IDS, N_FIELDS, u=1, eta=2, max_epochs=4,
                                settings=SETTINGS, seed=0, device="cpu")
    return candidates, valid, result


def test_every_family_enters_the_first_rung_and_promotion_crosses_families(race):
    candidates, _, result = race
    first = [r.candidate for r in result.rungs if r.rung == 0]
    assert first == candidates  # recorded in the candidates' order
    ranked = sorted((r for r in result.rungs if r.rung == 0), key=lambda r: -r.valid_score)
    second = {r.candidate for r in result.rungs if r.rung == 1}
    assert second == {r.candidate for r in ranked[:len(second)]}  # the best two, whatever their family
    assert set(result.best_by_family()) == {"mlp", "gbdt"}


def test_the_winner_is_the_best_evaluation_and_rebuilds_from_its_snapshot(race):
    _, valid, result = race
    best = max(result.rungs, key=lambda r: r.valid_score)
    assert (result.winner, result.winner_epochs) == (best.candidate, best.total_epochs)
    family = get_family(result.winner.family)
    assert family.evaluate(result.model(), valid, result.task, 1024) == pytest.approx(result.valid_score, abs=1e-9)
    hyper = ModelHyper(n_ids=N_IDS, n_fields=N_FIELDS, n_outputs=2, embedding_dim=SETTINGS.embedding_dim,
                       batch_norm=SETTINGS.batch_norm, family=result.winner.family)
    stored = family.from_bytes(result.winner.config, hyper, 2, result.weights())
    assert family.evaluate(stored, valid, result.task, 1024) == pytest.approx(result.valid_score, abs=1e-9)


def test_the_summary_names_families_and_candidates_as_text(race):
    _, _, result = race
    summary = result.to_json()
    assert parse_candidate(summary["winner"]) == result.winner and summary["family"] == result.winner.family
    assert {rung["family"] for rung in summary["rungs"]} == {"mlp", "gbdt"}
    assert all(parse_candidate(rung["arch"]).family == rung["family"] for rung in summary["rungs"])


class BrokenFamily(MlpFamily):
    """An MLP family whose candidates cannot start training (as an estimator that raises)."""

    name = "broken"

    def new_trial(self, *args, **kwargs):
        raise RuntimeError("no split can be made")


def test_a_candidate_that_cannot_train_loses_and_the_race_goes_on():
    register_family(BrokenFamily())
    train, valid = split(1500, 0), split(500, 1)
    result = successive_halving([Candidate("broken", (8,)), Candidate("mlp", (16, 8))], train, valid, N_IDS,
                                N_FIELDS, u=1, eta=2, max_epochs=2, settings=SETTINGS, seed=0, device="cpu")
    assert result.winner == Candidate("mlp", (16, 8))
    assert result.failures == [{"arch": "broken:8", "family": "broken", "rung": 0,
                                "error": "RuntimeError: no split can be made"}]
    assert result.to_json()["failures"] == result.failures
    with pytest.raises(RuntimeError, match="no split can be made"):  # no candidate of any family trained
        successive_halving([Candidate("broken", (8,)), Candidate("broken", (4,))], train, valid, N_IDS, N_FIELDS,
                           u=1, eta=2, max_epochs=2, settings=SETTINGS, seed=0, device="cpu")


class QueryCanceled(Exception):
    """Stands for what a PostgreSQL cancel raises from the caller's cancel check."""


def test_an_error_of_the_cancel_check_stops_the_race_and_is_not_a_candidates_failure():
    train, valid = split(1500, 0), split(500, 1)
    calls = []

    def cancel_after_a_while() -> bool:
        calls.append(1)
        if len(calls) > 3:
            raise QueryCanceled("canceling statement due to user request")
        return False

    with pytest.raises(QueryCanceled):
        successive_halving([Candidate("gbdt", portfolio(1)[0]), Candidate("mlp", (16, 8))], train, valid, N_IDS,
                           N_FIELDS, u=1, eta=2, max_epochs=2, settings=SETTINGS, seed=0, device="cpu",
                           should_stop=cancel_after_a_while)


def test_time_a_converged_trees_winner_leaves_finishes_the_runners_up():
    """Trees find this label at once and early-stop; the deadline is far: the finishing phase
    goes on to variations of the trees leader, then down the ranking (as far as the time goes:
    the MLP runner-up trains to the deadline), and the winner is the best evaluation of all."""
    import time

    candidates = [Candidate("gbdt", portfolio(1)[0]), Candidate("mlp", (16, 8)), Candidate("gbdt", portfolio(2)[1])]
    train, valid = split(3000, 2), split(1000, 3)
    started = time.monotonic()
    result = successive_halving(candidates, train, valid, N_IDS, N_FIELDS, u=1, eta=2, max_epochs=2,
                                settings=SETTINGS, seed=0, device="cpu", finish=True, deadline=started + 6.0)
    final = [r for r in result.rungs if r.final]
    assert len(final) >= 2 and len({r.candidate for r in final}) == len(final)  # each finished once
    assert final[0].candidate.family == "gbdt"  # the leader first
    later = [r.candidate in candidates for r in final[1:]]  # runners-up (True) or variations (False)
    assert later == sorted(later)  # the variations before the runners-up
    assert all(r.candidate.family == "gbdt" for r in final[1:] if r.candidate not in candidates)
    best = max(result.rungs, key=lambda r: r.valid_score)
    assert result.winner == best.candidate
    assert time.monotonic() - started < 6.0 + 2.0


def test_time_a_converged_trees_winner_leaves_goes_to_the_reserves_first():
    """Trees converge at once here and the deadline is far: the reserves train from scratch, in
    their order, then variations of the best; a reserve that cannot train loses with its
    reason and the others go on; the winner is still the best evaluation of all. (Trees only:
    an MLP runner-up would train to the deadline; the run ends when the trees have nothing
    left to try.)"""
    import time

    register_family(BrokenFamily())
    candidates = [Candidate("gbdt", portfolio(1)[0]), Candidate("gbdt", portfolio(2)[1])]
    reserves = [Candidate("broken", (8,)), Candidate("gbdt", portfolio(3)[2]), Candidate("gbdt", portfolio(4)[3])]
    train, valid = split(3000, 2), split(1000, 3)
    started = time.monotonic()
    result = successive_halving(candidates, train, valid, N_IDS, N_FIELDS, u=1, eta=2, max_epochs=2,
                                settings=SETTINGS, seed=0, device="cpu", finish=True, deadline=started + 60.0,
                                reserves=reserves)
    final = [r.candidate for r in result.rungs if r.final]
    assert final[0] in candidates  # the leader's finishing phase first
    assert final[1:3] == reserves[1:]  # then the reserves, in order, the broken one left out
    variation = final[3]  # then the best so far at half its rate
    assert variation.family == "gbdt" and variation not in candidates + reserves
    assert any(variations(r.candidate.config)[0] == variation.config for r in result.rungs
               if r.candidate.family == "gbdt")
    assert [failure["arch"] for failure in result.failures] == ["broken:8"]
    assert "RuntimeError" in result.failures[0]["error"]
    best = max(result.rungs, key=lambda r: r.valid_score)
    assert result.winner == best.candidate
    assert time.monotonic() - started < 60.0 + 2.0


def test_reserves_wait_without_a_finishing_phase():
    train, valid = split(1500, 0), split(500, 1)
    result = successive_halving([Candidate("gbdt", portfolio(1)[0]), Candidate("mlp", (8,))], train, valid, N_IDS,
                                N_FIELDS, u=1, eta=2, max_epochs=2, settings=SETTINGS, seed=0, device="cpu",
                                reserves=[Candidate("gbdt", portfolio(2)[1])])
    assert Candidate("gbdt", portfolio(2)[1]) not in {r.candidate for r in result.rungs}
