"""Piecewise-linear embeddings of numeric fields (trails.piecewise): the bins from a layout's
quantiles, the embedding's shape as a function of the value, the numpy and ONNX forward passes
against torch's, training and resuming with them, and end to end against the real cluster: a
layout keeps its quantiles, and a model selected with bins is stored, served, exported and
refit encoding rows as it trained."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trails.families import MLP
from trails.families.mlp import TaskOutput, export_onnx
from trails.families.mlp_config import mlp_config
from trails.model import build_model, state_from_bytes, state_to_bytes
from trails.piecewise import bin_edges, numeric_bins_of
from trails.refinement.data import SplitTensors
from trails.refinement.recipe import PIECEWISE, PORTFOLIO, Recipe, numeric_settings
from trails.refinement.settings import TrainingSettings
from trails.refinement.trainer import train
from trails.serving.mlp_forward import MlpForward
from trails.task import BINARY_01

N_FIELDS, N_IDS = 3, 12  # field 0 categorical (ids 0..3), fields 1 and 2 numeric (value ids 4 and 5)
EDGES = ((1, 4, tuple(np.linspace(-2.0, 2.0, 33))), (2, 5, (0.0, 0.0, 1.0, 1.0)))


def test_bins_are_evenly_spaced_quantiles_with_ties_merged():
    quantiles = np.arange(33, dtype=float)
    assert bin_edges(quantiles, 4).tolist() == [0, 8, 16, 24, 32]
    assert bin_edges(quantiles, 100).tolist() == quantiles.tolist()  # never more bins than quantiles
    assert bin_edges([0, 0, 0, 1, 1], 4).tolist() == [0, 1]
    assert len(bin_edges([3, 3, 3], 4)) == 0 and len(bin_edges([1.0], 4)) == 0  # one value: no bins
    assert numeric_bins_of(EDGES, 0) is None and numeric_bins_of(((0, 1, (2.0, 2.0)),), 8) is None
    fields, first_ids, lower, inv_width = numeric_bins_of(EDGES, 8)
    assert fields.tolist() == [1, 2] and first_ids.tolist() == [4, 5] and lower.shape == (2, 8)
    assert lower[1].tolist() == [0.0] + [1.0] * 7 and inv_width[1].tolist() == [1.0] + [0.0] * 7  # padding bins never on


def _model(bins=8, seed=0):
    torch.manual_seed(seed)
    return build_model((16, 8), N_IDS, N_FIELDS, embedding_dim=4, numeric=numeric_bins_of(EDGES, bins)).eval()


def test_a_numeric_embedding_is_continuous_and_linear_within_each_bin_and_null_keeps_its_id():
    model = _model()
    z = torch.linspace(-3.0, 3.0, 601)
    ids = torch.tensor([[0, 4, 5]]).repeat(len(z), 1)
    values = torch.stack([torch.ones_like(z), z, torch.zeros_like(z)], dim=1)
    embedded = model.embed(ids, values).view(len(z), N_FIELDS, 4)[:, 1].detach()
    steps = embedded[1:] - embedded[:-1]
    assert steps.abs().max() < 0.05  # continuous: no jump between neighbouring values
    inside = (z[:-1] >= -2.0) & (z[1:] <= -1.5)  # within the first of 8 bins [-2, -1.5]: one slope
    assert torch.allclose(steps[inside], steps[inside][0].expand_as(steps[inside]), atol=1e-5)
    assert torch.allclose(embedded[z <= -2.0], embedded[0].expand_as(embedded[z <= -2.0]))  # flat outside
    assert torch.allclose(embedded[z >= 2.0], embedded[-1].expand_as(embedded[z >= 2.0]))
    missing = model.embed(torch.tensor([[0, 10, 5]]), torch.tensor([[1.0, 1.0, 0.0]])).view(N_FIELDS, 4)[1]
    assert torch.equal(missing, model.embedding.weight[10])  # NULL: the field's missing id, as before


def _batch(n=64, seed=1):
    generator = np.random.default_rng(seed)
    ids = np.stack([generator.integers(0, 4, n), np.where(generator.random(n) < 0.2, 10, 4), np.full(n, 5)], axis=1)
    values = np.stack([np.ones(n), generator.normal(0, 1.5, n), generator.random(n)], axis=1).astype(np.float32)
    values[ids[:, 1] == 10, 1] = 1.0
    return ids.astype(np.int64), values


def test_numpy_and_onnx_forward_passes_predict_what_torch_predicts():
    import onnxruntime

    model, (ids, values) = _model(), _batch()
    expected = TaskOutput(model, BINARY_01)(torch.from_numpy(ids), torch.from_numpy(values)).detach().numpy()
    state = {name: tensor.numpy() for name, tensor in state_from_bytes(state_to_bytes(model.state_dict())).items()}
    forward = MlpForward(state, BINARY_01)
    assert forward.fits(N_IDS, N_FIELDS, 2)
    np.testing.assert_allclose(forward.outputs(ids, values)[:, 1], expected, atol=1e-6)
    assert forward.row_outputs(ids[3].tolist(), values[3].tolist())[1] == pytest.approx(expected[3], abs=1e-6)
    session = onnxruntime.InferenceSession(export_onnx(TaskOutput(model, BINARY_01), N_FIELDS),
                                           providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"ids": ids, "values": values})[0], expected, atol=1e-6)
    loaded = build_model((16, 8), N_IDS, N_FIELDS, embedding_dim=4, state=state_to_bytes(model.state_dict()))
    assert torch.equal(loaded(torch.from_numpy(ids), torch.from_numpy(values)),
                       model(torch.from_numpy(ids), torch.from_numpy(values)))


def _wave(n, seed):
    """Field 1 numeric: the label is whether sin(2z) > 0, a function no single slope fits."""
    ids, values = _batch(n, seed)
    labels = torch.from_numpy((np.sin(2 * values[:, 1]) > 0).astype(np.int64))
    return SplitTensors(torch.from_numpy(ids), torch.from_numpy(values), labels)


def test_a_trial_with_bins_trains_resumes_exactly_and_only_races_where_a_field_is_numeric():
    settings = TrainingSettings(batch_size=64, iter_per_epoch=8, learning_rate=1e-2, embedding_dim=4,
                                numeric_edges=EDGES)
    config = mlp_config((16, 8), PIECEWISE)
    data = _wave(2000, 2)
    trial = MLP.new_trial(config, N_IDS, N_FIELDS, 10**6, settings, seed=4)
    assert trial.model.numeric is not None and trial.settings.numeric_bins == PIECEWISE.numeric_bins
    train(trial, data, 2, 64, 8)
    resumed = MLP.trial_from_state(trial.export_state(), N_IDS, N_FIELDS, TrainingSettings())  # its own settings
    train(trial, data, 1, 64, 8)
    train(resumed, data, 1, 64, 8)
    for name, tensor in trial.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert PIECEWISE in PORTFOLIO and PIECEWISE.applies(settings)
    assert not PIECEWISE.applies(TrainingSettings()) and Recipe().applies(TrainingSettings())
    assert Recipe.parse("ple=16") == PIECEWISE and PIECEWISE.text == "ple=16"
    assert TrainingSettings.from_json(json.loads(json.dumps(settings.to_json()))) == settings


def test_the_numeric_encoding_argument_sets_the_runs_bins_and_which_recipes_race():
    from trails.selection.entrants import race_recipes

    configured = TrainingSettings(numeric_bins=8)
    auto = numeric_settings(TrainingSettings(), EDGES, "auto")
    assert (auto.numeric_bins, auto.numeric_edges) == (0, EDGES) and race_recipes(auto, 4) == PORTFOLIO
    assert numeric_settings(configured, EDGES, "auto").numeric_bins == 8  # the configuration's run recipe
    linear = numeric_settings(configured, EDGES, "linear")
    assert (linear.numeric_bins, linear.numeric_edges) == (0, ()) and PIECEWISE not in race_recipes(linear, 3)
    piecewise = numeric_settings(TrainingSettings(), EDGES, "piecewise")
    assert piecewise.numeric_bins == PIECEWISE.numeric_bins and PIECEWISE not in race_recipes(piecewise, 3)
    assert numeric_settings(configured, EDGES, "piecewise").numeric_bins == 8
    no_numeric = numeric_settings(TrainingSettings(), (), "auto")
    assert race_recipes(no_numeric, 4) == PORTFOLIO[:3] and race_recipes(no_numeric, 3, in_trials=True) == (Recipe(),)


WAVE = """CREATE TABLE wave AS
SELECT i AS id, chr(65 + i % 3) AS b, ((i * 7919) % 1000) / 100.0 AS x,
       CASE WHEN i % 41 = 0 THEN NULL ELSE ((i * 104729) % 997) / 10.0 END AS y,
       CASE WHEN sin(((i * 7919) % 1000) / 50.0) > 0 THEN 1 ELSE 0 END AS label
FROM generate_series(1, 6000) AS i"""


def test_a_layout_keeps_each_numeric_columns_train_quantiles(sql, pg2):
    from trails.data.dataset import resolve_dataset
    from trails.data.layout_store import get_or_create_layout
    from trails.data.session import PgSession

    sql(WAVE)
    layout = get_or_create_layout(PgSession(pg2), resolve_dataset(PgSession(pg2), "wave"), "label")
    x = next(f for f in layout.fields if f.name == "x")
    train = [float(v) for (v,) in sql("SELECT x FROM wave ORDER BY x")]  # one table: the hash split's train rows
    assert len(x.quantiles) == 33 and x.quantiles == sorted(x.quantiles)
    assert min(train) <= x.quantiles[0] and x.quantiles[-1] <= max(train)
    edges = dict((field, quantiles) for field, _, quantiles in layout.numeric_edges())
    index = [f.name for f in layout.fields].index("x")
    np.testing.assert_allclose(edges[index], (np.array(x.quantiles) - x.mean) / x.std)
    assert all(layout.fields[i].kind == "numeric" for i in edges)


def test_a_binned_model_is_stored_served_exported_and_refit_as_it_trained(sql, pg_dsn):
    import onnxruntime
    import psycopg2

    from trails.data.row_values import columns_from_rows
    from trails.data.session import PgSession
    from trails.registry import load_model

    sql(WAVE)
    model_id = sql("SELECT model_id FROM model_selection('wave', NULL, max_trials => 2, families => 'mlp',"
                   " refinement => 'backend', numeric_encoding => 'piecewise')")[0][0]
    hyper = sql("SELECT hyper FROM trails.models WHERE model_id = %s", model_id)[0][0]
    assert hyper["recipe"]["numeric_bins"] == PIECEWISE.numeric_bins
    rows = [r for (r,) in sql("SELECT to_jsonb(w) FROM wave w ORDER BY id LIMIT 400")]
    with psycopg2.connect(pg_dsn) as connection:
        stored = load_model(PgSession(connection), model_id)
    assert stored.fitted.numeric is not None and len(stored.fitted.numeric.fields) == 2  # x and y
    ids, values, _ = stored.layout.encode(columns_from_rows(stored.layout, rows))
    expected = stored.predict(ids, values)[:, 1]  # torch, in this process
    served = [v for (v,) in sql("SELECT trails.predict(%s, w) FROM wave w ORDER BY id LIMIT 400", model_id)]
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-5)
    table = dict(sql("SELECT id, score FROM trails.predict_table(%s, 'wave')", model_id))
    np.testing.assert_allclose([table[r["id"]] for r in rows], expected, rtol=0, atol=1e-5)
    session = onnxruntime.InferenceSession(bytes(sql("SELECT trails.export_model(%s)", model_id)[0][0]),
                                           providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"ids": ids, "values": values})[0], expected, atol=1e-5)
    new_id = sql("SELECT * FROM trails.refit(%s, 20)", model_id)[0][0]
    refit_hyper = sql("SELECT hyper FROM trails.models WHERE model_id = %s", new_id)[0][0]
    assert refit_hyper["recipe"]["numeric_bins"] == PIECEWISE.numeric_bins
    with psycopg2.connect(pg_dsn) as connection:
        assert load_model(PgSession(connection), new_id).fitted.numeric is not None
