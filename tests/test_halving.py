"""Successive halving and the trainer on synthetic tensors (and one real split read).

The rungs must be exactly :func:`halving_rungs`; a survivor must continue, not restart; a
deadline stops the run with the best model evaluated so far; a cancel raises; the AUC is the
whole split's, checked against an independent rank computation.
"""

import threading
import time

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from trails.errors import TrailsError
from trails.refinement.data import SplitTensors, load_split
from trails.refinement.halving import Cancelled, successive_halving
from trails.refinement.schedule import halving_rungs, planned_epochs
from trails.model import positive_probability
from trails.refinement.trainer import (Trial, TrainingSettings, evaluate_auc, iterations_per_epoch,
                                       throttled, train)

N_FIELDS, PER_FIELD = 4, 60
N_IDS = N_FIELDS * PER_FIELD
SETTINGS = TrainingSettings(batch_size=128, iter_per_epoch=15, learning_rate=1e-2)
CANDIDATES = [(8,), (16,), (8, 8), (16, 8), (32,), (32, 16), (4,), (4, 4), (24,)]


def synthetic(n_rows: int, seed: int) -> SplitTensors:
    """Rows of 4 categorical fields; the label is a noisy linear function of the ids' weights."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, PER_FIELD, (n_rows, N_FIELDS), generator=generator)
    ids += torch.arange(N_FIELDS) * PER_FIELD
    weights = torch.randn(N_IDS, generator=torch.Generator().manual_seed(123))
    score = weights[ids].sum(1) + 0.5 * torch.randn(n_rows, generator=generator)
    return SplitTensors(ids, torch.ones(n_rows, N_FIELDS), (score > 0).long())


@pytest.fixture(scope="module")
def splits():
    return synthetic(4000, 1), synthetic(1000, 2)


def run(splits, candidates=CANDIDATES, u=3, eta=3, max_epochs=9, settings=SETTINGS, seed=0, **kwargs):
    train_data, valid_data = splits
    return successive_halving(candidates, train_data, valid_data, N_IDS, N_FIELDS, u, eta, max_epochs,
                              settings=settings, seed=seed, device="cpu", **kwargs)


@pytest.fixture(scope="module")
def result(splits):
    return run(splits)


def test_rungs_are_exactly_the_schedule(result):
    schedule = halving_rungs(len(CANDIDATES), 3, 3, 9)
    assert [tuple(rung) for rung in result.schedule] == [tuple(rung) for rung in schedule]
    for index, rung in enumerate(schedule):
        evaluated = [r for r in result.rungs if r.rung == index]
        assert len(evaluated) == rung.n_models
        assert all(r.total_epochs == rung.total_epochs for r in evaluated)
        assert all(len(r.train_losses) == rung.epochs_this_rung for r in evaluated)
    assert result.trained_epochs == result.planned_epochs == planned_epochs(len(CANDIDATES), 3, 3, 9)
    assert not result.deadline_hit


def test_the_best_of_each_rung_survive(result):
    for index in range(len(result.schedule) - 1):
        this_rung = sorted((r for r in result.rungs if r.rung == index), key=lambda r: -r.valid_score)
        survivors = {r.candidate for r in result.rungs if r.rung == index + 1}
        assert survivors == {r.candidate for r in this_rung[:len(survivors)]}


def test_winner_is_the_best_evaluation_with_its_weights(result, splits):
    best = max(result.rungs, key=lambda r: r.valid_score)
    assert (result.winner, result.winner_epochs, result.valid_score) == (best.candidate, best.total_epochs,
                                                                      best.valid_score)
    assert all(t.device.type == "cpu" for t in result.state_dict.values())
    assert evaluate_auc(result.model(), splits[1]) == pytest.approx(result.valid_score, abs=1e-12)


def test_survivors_continue_where_they_stopped(result):
    """Rung 2 starts at rung 1's loss, far below a fresh model's first epoch (TRAILS retrains)."""
    for arch in {r.candidate for r in result.rungs if r.rung == 1}:
        first, second = (next(r for r in result.rungs if r.candidate == arch and r.rung == rung)
                         for rung in (0, 1))
        fresh_first_epoch, end_of_rung_1 = first.train_losses[0], first.train_losses[-1]
        start_of_rung_2 = second.train_losses[0]
        assert start_of_rung_2 < end_of_rung_1 * 1.15
        assert fresh_first_epoch - start_of_rung_2 > 0.8 * (fresh_first_epoch - end_of_rung_1)


def test_resuming_equals_training_without_a_stop(splits):
    """Weights, Adam moments, cosine schedule and shuffling all carry over a pause exactly."""
    train_data = splits[0]
    max_iterations = 5 * iterations_per_epoch(len(train_data), 128, 15)
    straight = Trial((16, 8), N_IDS, N_FIELDS, max_iterations, SETTINGS, seed=7)
    paused = Trial((16, 8), N_IDS, N_FIELDS, max_iterations, SETTINGS, seed=7)
    losses = train(straight, train_data, 3, 128, 15)
    resumed = train(paused, train_data, 2, 128, 15) + train(paused, train_data, 1, 128, 15)
    assert losses == resumed
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, paused.model.state_dict()[name]), name
    assert paused.iterations == 3 * 15 and paused.epochs_trained == 3
    assert all(state["step"].item() == 45 for state in paused.optimizer.state.values())
    assert paused.learning_rate == pytest.approx(1e-2 * 0.5 * (1 + np.cos(np.pi * 45 / 75)))


def test_same_seed_same_run_other_seed_other_run(splits):
    small = dict(candidates=CANDIDATES[:3], u=1, max_epochs=3)
    first, again, other = run(splits, **small), run(splits, **small), run(splits, seed=1, **small)
    assert [r.valid_score for r in first.rungs] == [r.valid_score for r in again.rungs]
    assert all(torch.equal(t, again.state_dict[name]) for name, t in first.state_dict.items())
    assert [r.valid_score for r in first.rungs] != [r.valid_score for r in other.rungs]


def test_deadline_stops_with_the_best_model_so_far(splits):
    slow = TrainingSettings(batch_size=128, iter_per_epoch=200, learning_rate=1e-2)
    started = time.monotonic()
    # 5 × 27 epochs × 31 iterations of up to 256-wide layers: seconds even on a fast CPU
    result = run(splits, candidates=[(256, 256), (128, 128), (64, 64), (32, 32), (16,)], u=27,
                 max_epochs=27, settings=slow, deadline=started + 0.8)
    elapsed = time.monotonic() - started
    assert result.deadline_hit
    assert elapsed < 0.8 + 0.5  # stops between iterations; at most one evaluation after it
    assert result.trained_epochs < result.planned_epochs
    assert result.rungs and result.winner in {r.candidate for r in result.rungs}
    assert evaluate_auc(result.model(), splits[1]) == pytest.approx(result.valid_score, abs=1e-12)


def test_a_deadline_already_past_still_gives_a_model(splits):
    result = run(splits, candidates=[(8,), (16,)], u=1, max_epochs=3, deadline=time.monotonic() - 1)
    assert result.deadline_hit and result.trained_epochs == 0
    assert len(result.rungs) == 1 and result.rungs[0].interrupted
    assert 0.0 <= result.valid_score <= 1.0


def test_cancel_raises_within_an_iteration(splits):
    stop = threading.Event()
    slow = TrainingSettings(batch_size=128, iter_per_epoch=200, learning_rate=1e-2)
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        run(splits, candidates=[(256, 256), (128, 128)], u=27, max_epochs=27, settings=slow,
            should_stop=stop.is_set)
    assert time.monotonic() - started < 0.3 + 0.3


def test_an_exception_from_should_stop_propagates_and_checks_are_throttled(splits):
    calls = []

    def check():
        calls.append(time.monotonic())
        if len(calls) == 3:
            raise KeyboardInterrupt("query cancelled")  # as plpy raises QueryCanceled
        return False

    slow = TrainingSettings(batch_size=128, iter_per_epoch=200, learning_rate=1e-2)
    with pytest.raises(KeyboardInterrupt, match="query cancelled"):
        # 3 × 27 epochs × 31 iterations of up to 256-wide layers: far beyond the third check
        run(splits, candidates=[(256, 256), (128, 128), (64, 64)], u=27, max_epochs=27, settings=slow,
            should_stop=throttled(check, 0.05))
    # check() reads the clock just after the throttle did: allow that gap
    assert all(later - earlier >= 0.05 - 1e-3 for earlier, later in zip(calls, calls[1:]))


def test_progress_reports_every_epoch_and_evaluation(splits):
    events = []
    result = run(splits, candidates=CANDIDATES[:3], u=1, max_epochs=3, progress=events.append)
    fractions = [event.fraction for event in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [event.result for event in events if event.result is not None] == result.rungs
    assert sum(event.result is None for event in events) == result.trained_epochs


def test_evaluate_auc_is_the_whole_split_auc(splits):
    train_data, valid_data = splits
    trial = Trial((16,), N_IDS, N_FIELDS, 20, SETTINGS, seed=3)
    train(trial, train_data, 1, 128, 15)
    model = trial.model.eval()
    ids, values = valid_data.ids.numpy(), valid_data.values.numpy()
    scores = positive_probability(model, ids, values, len(valid_data))  # float64, one batch
    labels = valid_data.labels.numpy()
    # Mann-Whitney: the share of (positive, negative) pairs ranked right, ties counting half.
    positives, negatives = scores[labels == 1], scores[labels == 0]
    pairs = positives[:, None] - negatives[None, :]
    by_hand = ((pairs > 0).sum() + 0.5 * (pairs == 0).sum()) / pairs.size
    auc = evaluate_auc(model, valid_data, batch_size=len(valid_data))
    assert auc == pytest.approx(by_hand, abs=1e-12)
    assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    with torch.no_grad():
        softmax = torch.softmax(model(valid_data.ids, valid_data.values), 1)[:, 1].numpy()
    assert np.allclose(scores, softmax, atol=1e-6)  # the class-1 probability, float32 round-off
    # Batching changes the float32 round-off only: probabilities within 1e-6, so at most a few
    # near-tied pairs (4e-6 of AUC each) can swap.
    assert np.allclose(positive_probability(model, ids, values, 97), scores, atol=1e-6)
    assert evaluate_auc(model, valid_data, batch_size=97) == pytest.approx(auc, abs=1e-4)


def test_evaluate_auc_needs_both_classes(splits):
    one_class = SplitTensors(splits[1].ids, splits[1].values, torch.ones(len(splits[1]), dtype=torch.long))
    trial = Trial((8,), N_IDS, N_FIELDS, 10, SETTINGS)
    with pytest.raises(TrailsError, match="needs at least two classes"):
        evaluate_auc(trial.model, one_class)


@pytest.mark.parametrize("kwargs, message", [
    (dict(eta=1), "the reduction factor eta is 1, but must be eta >= 2"),
    (dict(u=0), "the first-rung epochs U is 0"),
    (dict(u=4, max_epochs=3), "must be 1 <= U <= max_epochs (3)"),
    (dict(candidates=[]), "the number of candidates K is 0, but must be K >= 1"),
    (dict(candidates=[(8, 0)]), "every width must be >= 1"),
    (dict(settings=TrainingSettings(batch_size=0)), "the value of batch_size is 0"),
])
def test_arguments_are_validated(splits, kwargs, message):
    with pytest.raises(TrailsError) as caught:
        run(splits, **{"u": 1, "max_epochs": 3, **kwargs})
    assert message in str(caught.value)


def test_load_split_streams_chunks_of_a_real_table(pg2):
    from trails.data.batches import read_encoded
    from trails.data.dataset import resolve_dataset
    from trails.data.layout_store import get_or_create_layout
    from trails.data.session import PgSession

    session = PgSession(pg2)
    dataset = resolve_dataset(session, "frappe")
    layout = get_or_create_layout(session, dataset, "label")
    seen = []
    data = load_split(session, dataset, layout, "test", "cpu", chunk_rows=10_000,
                      on_chunk=lambda chunk, rows: seen.append((len(chunk), rows)))
    # the column reader reads whole pages: chunks of about 10,000 rows
    assert len(seen) == 3 and seen[-1][1] == len(data) == 28_860
    assert all(9_000 <= size <= 11_000 for size, _ in seen[:2])
    assert [rows for _, rows in seen] == list(np.cumsum([size for size, _ in seen]))
    expected = read_encoded(session, dataset, layout, "test")
    assert np.array_equal(data.ids.numpy(), expected.ids)
    assert np.array_equal(data.values.numpy(), expected.values)
    assert np.array_equal(data.labels.numpy(), expected.labels)
    assert data.ids.dtype == torch.int64 and data.values.dtype == torch.float32


def test_anneal_decays_from_the_current_rate_to_zero_over_the_given_iterations(splits):
    trial = Trial((8,), N_IDS, N_FIELDS, 10**12, SETTINGS, seed=0)  # constant rate until annealed
    train(trial, splits[0], 1, 128, 15)
    before = trial.learning_rate
    assert before == pytest.approx(1e-2, rel=1e-6)
    trial.anneal(30)
    assert trial.learning_rate == pytest.approx(before)  # no jump
    train(trial, splits[0], 1, 128, 15)
    assert trial.learning_rate == pytest.approx(before * 0.5, rel=1e-6)  # half-way down the cosine
    train(trial, splits[0], 1, 128, 15)
    assert trial.learning_rate == pytest.approx(0.0, abs=1e-12)
    assert trial.seconds_per_iteration > 0 and trial.iterations == 45


def test_finish_trains_the_winner_on_until_the_deadline(splits):
    started = time.monotonic()
    window = 3.0
    result = run(splits, candidates=CANDIDATES[:3], u=1, max_epochs=3, finish=True,
                 deadline=started + window)
    elapsed = time.monotonic() - started
    final = [r for r in result.rungs if r.final]
    # the leader first; a runner-up too when the leader's finish left a tenth of the time
    assert final and len({r.candidate for r in final}) == len(final)
    # the leader trained on beyond the rung's 1 epoch; it holds the best-validated of those epochs
    assert result.finish_epochs >= 1 and final[0].total_epochs >= 2
    assert not result.deadline_hit
    assert elapsed < window + 0.5  # the final evaluation fits before the deadline (plus slack)
    assert result.to_json()["finish_epochs"] == result.finish_epochs
    # without a deadline there is nothing to fill: no finishing phase
    plain = run(splits, candidates=CANDIDATES[:3], u=1, max_epochs=3, finish=True)
    assert plain.finish_epochs == 0 and not any(r.final for r in plain.rungs)


def test_one_candidate_goes_straight_to_the_finishing_phase(splits):
    started = time.monotonic()
    result = run(splits, candidates=[(16,)], u=1, max_epochs=1, finish=True, deadline=started + 2.0)
    assert [r.final for r in result.rungs] == [True]
    assert result.finish_epochs >= 1 and not result.deadline_hit
    past = run(splits, candidates=[(16,)], u=1, max_epochs=1, finish=True, deadline=time.monotonic() - 1)
    assert past.deadline_hit and len(past.rungs) == 1  # still a (barely trained) model


def test_stratified_sample_keeps_each_class_share_and_order():
    data = synthetic(5000, 7)
    sample = data.stratified_sample(1000, seed=3)
    assert len(sample) == 1000
    positives = int(data.labels.sum())
    assert int(sample.labels.sum()) == round(1000 * positives / 5000)
    # the rows are rows of the split, in their original order, each once
    keys = data.ids @ (PER_FIELD * N_FIELDS) ** torch.arange(N_FIELDS)
    sampled = sample.ids @ (PER_FIELD * N_FIELDS) ** torch.arange(N_FIELDS)
    position = {int(key): index for index, key in enumerate(keys.tolist())}
    indices = [position[int(key)] for key in sampled.tolist()]
    assert indices == sorted(indices) and len(set(indices)) == 1000
    assert torch.equal(data.stratified_sample(1000, seed=3).ids, sample.ids)  # the seed fixes it
    assert not torch.equal(data.stratified_sample(1000, seed=4).ids, sample.ids)
    assert data.stratified_sample(5000) is data  # small enough: the split itself
    rare = SplitTensors(data.ids, data.values, torch.zeros(5000, dtype=torch.int64))
    rare.labels[17] = 1
    assert int(rare.stratified_sample(100).labels.sum()) == 1  # a present class keeps a row
    tiny = SplitTensors(data.ids[:4], data.values[:4], torch.tensor([0, 1, 1, 1]))
    assert len(tiny.stratified_sample(2)) == 2  # rounding up two labels must not exceed the cap
    with pytest.raises(ValueError):
        data.stratified_sample(0)


def test_rungs_decide_on_a_valid_sample_and_the_winner_is_scored_on_the_whole_split(splits):
    train_data, valid_data = splits
    capped = TrainingSettings(**{**SETTINGS.__dict__, "decision_valid_rows": 300})
    result = run(splits, candidates=CANDIDATES[:3], u=1, max_epochs=3, settings=capped)
    sample = valid_data.stratified_sample(300, seed=0)
    assert result.decision_rows == 300 and len(sample) == 300
    winner = result.model()
    # each rung's AUC is the sample's (the winner's last evaluation shows it) ...
    assert result.decision_score == pytest.approx(evaluate_auc(winner, sample), abs=1e-6)
    assert result.decision_score == max(r.valid_score for r in result.rungs)
    # ... and the reported valid AUC is the whole split's
    assert result.valid_score == pytest.approx(evaluate_auc(winner, valid_data), abs=1e-6)
    assert result.to_json()["decision_rows"] == 300
    uncapped = run(splits, candidates=CANDIDATES[:3], u=1, max_epochs=3)
    assert uncapped.decision_rows == len(valid_data) and uncapped.decision_score == uncapped.valid_score


def test_a_trial_continues_from_its_exported_state(splits):
    """export_state → from_state (what the Ray executor ships between rungs) continues the
    training exactly: 1 + 2 epochs equal 3 epochs, learning rate and counters included."""
    train_data, _ = splits
    whole = Trial((16, 8), N_IDS, N_FIELDS, 100, SETTINGS, seed=3)
    train(whole, train_data, 3, SETTINGS.batch_size, SETTINGS.iter_per_epoch)
    first = Trial((16, 8), N_IDS, N_FIELDS, 100, SETTINGS, seed=3)
    train(first, train_data, 1, SETTINGS.batch_size, SETTINGS.iter_per_epoch)
    resumed = Trial.from_state(first.export_state(), N_IDS, N_FIELDS, SETTINGS)
    train(resumed, train_data, 2, SETTINGS.batch_size, SETTINGS.iter_per_epoch)
    assert resumed.epochs_trained == 3 and resumed.iterations == whole.iterations
    assert resumed.learning_rate == whole.learning_rate
    assert all(torch.equal(a, b) for a, b in zip(whole.model.state_dict().values(),
                                                 resumed.model.state_dict().values()))


def test_training_on_a_split_still_being_read_uses_the_rows_read(splits):
    """An epoch over a GrowingSplit draws from the rows in when it starts."""
    from trails.refinement.stream import GrowingSplit

    train_data, _ = splits
    growing = GrowingSplit(len(train_data), N_FIELDS)
    part = SplitTensors(train_data.ids[:200], train_data.values[:200], train_data.labels[:200])
    growing.append(part)
    trial = Trial((8,), N_IDS, N_FIELDS, 100, SETTINGS, seed=0)
    train(trial, growing, 1, 64, 100)
    assert trial.iterations == 200 // 64  # 3: only the 200 rows read
    rest = SplitTensors(train_data.ids[200:], train_data.values[200:], train_data.labels[200:])
    growing.append(rest)
    growing.finish()
    train(trial, growing, 1, 64, 100)
    assert trial.iterations == 3 + min(100, len(train_data) // 64)
    assert len(growing) == len(train_data) and torch.equal(growing.complete().ids, train_data.ids)


def test_successive_halving_starts_before_the_train_split_is_read(splits):
    """A reader thread appends chunks while successive halving runs; a failing read fails the run."""
    from trails.refinement.stream import GrowingSplit, Reader

    train_data, valid_data = splits

    def read(on_chunk, fail_after=None):
        for start in range(0, len(train_data), 500):
            end = start + 500
            on_chunk(SplitTensors(train_data.ids[start:end], train_data.values[start:end],
                                  train_data.labels[start:end]), end)
            if fail_after is not None and end >= fail_after:
                raise TrailsError("the connection was lost")
            time.sleep(0.05)

    reader = Reader(GrowingSplit(len(train_data), N_FIELDS), read).start()
    reader.wait_for_rows(1)
    rows_at_start = reader.split.rows_read  # the reader sleeps 50 ms between its 8 chunks
    result = run((reader.split, valid_data), candidates=CANDIDATES[:3], u=1, max_epochs=3)
    assert result.trained_epochs == result.planned_epochs and result.valid_score > 0.6
    assert 500 <= rows_at_start < len(train_data)
    whole = reader.split.complete(timeout=30)
    assert len(reader.split) == len(whole) == len(train_data) and torch.equal(whole.labels, train_data.labels)

    failing = Reader(GrowingSplit(len(train_data), N_FIELDS), lambda on_chunk: read(on_chunk, 500)).start()
    with pytest.raises(TrailsError, match="connection was lost"):  # at the start, or at an epoch's
        failing.wait_for_rows(1)
        run((failing.split, valid_data), candidates=CANDIDATES[:3], u=3, max_epochs=9)


def _finishing_context(splits, settings=SETTINGS):
    from trails.refinement.steps import HalvingContext
    from trails.task import BINARY_01

    train_data, valid_data = splits
    return HalvingContext(train_data, valid_data, N_IDS, N_FIELDS, settings, 0, torch.device("cpu"), BINARY_01,
                          max_units=None, deadline=None, should_stop=None)


def test_best_weights_restores_the_best_evaluated_epoch(splits):
    from trails.refinement.finishing import BestWeights
    from trails.refinement.trainer import evaluate

    context = _finishing_context(splits)
    trial = Trial((8,), N_IDS, N_FIELDS, 10**12, SETTINGS, seed=0)
    train(trial, splits[0], 2, 128, 15)
    best = BestWeights(context)
    best(trial, 0.0)
    kept, epochs = best.score, trial.epochs_trained
    with torch.no_grad():  # a far worse model: every output weight flipped
        trial.model.mlp[-1].weight.neg_()
    worse = evaluate(trial.model, splits[1], context.task)
    best(trial, 0.0)
    assert worse < kept and best.score == kept  # the worse epoch is not kept
    trial.epochs_trained += 3
    assert best.restore_if_better(trial, worse) == kept
    assert evaluate(trial.model, splits[1], context.task) == kept and trial.epochs_trained == epochs
    assert best.restore_if_better(trial, kept + 0.01) == kept + 0.01  # a better last model stays


def test_finish_returns_the_best_validated_weights_of_its_epochs(splits):
    from trails.refinement.finishing import finish_trial
    from trails.refinement.trainer import evaluate

    # few rows and a high rate: later epochs overfit, so the best epoch is often not the last
    settings = TrainingSettings(batch_size=32, iter_per_epoch=10, learning_rate=5e-2)
    small = (SplitTensors(splits[0].ids[:320], splits[0].values[:320], splits[0].labels[:320]), splits[1])
    context = _finishing_context(small, settings)
    trial = Trial((32, 16), N_IDS, N_FIELDS, 10**12, settings, seed=0)
    train(trial, small[0], 1, 32, 10)
    seen = []
    step = finish_trial(trial, context, time.monotonic() + 1.5, 0.01,
                        on_epoch=lambda t, loss: seen.append(evaluate(t.model, small[1], context.task)))
    assert len(seen) >= 2 and step.valid_score >= max(seen)
    assert evaluate(trial.model, small[1], context.task) == step.valid_score  # the model it returns
