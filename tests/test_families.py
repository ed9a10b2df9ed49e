"""The model-family seam without PostgreSQL: candidates and their text, the registry, the
stored ``hyper``, and the MLP family's build / bytes / parameters / train-resume / evaluate /
export on a tiny synthetic layout."""

import dataclasses
import io
import warnings

import numpy as np
import pytest
import torch

from trails.errors import TrailsError
from trails.families import (DEFAULT_FAMILY, MLP, Candidate, ModelFamily, ModelHyper, Trainable, family_names,
                             get_family, parse_candidate)
from trails.families import base
from trails.refinement.data import SplitTensors
from trails.refinement.trainer import TrainingSettings
from trails.task import BINARY_01, Task

N_IDS, N_FIELDS, ROWS = 12, 3, 256
HYPER = ModelHyper(n_ids=N_IDS, n_fields=N_FIELDS, n_outputs=2, embedding_dim=4, batch_norm=True, epochs=2,
                   learning_rate=1e-2, batch_size=32, iter_per_epoch=8, seed=5)
SETTINGS = TrainingSettings(batch_size=32, iter_per_epoch=8, learning_rate=1e-2, embedding_dim=4, batch_norm=True)
ARCH = (8, 16)


def _split(seed=0, rows=ROWS) -> SplitTensors:
    """Rows whose label is a function of the first field's id."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.stack([torch.randint(4 * f, 4 * f + 4, (rows,), generator=generator) for f in range(N_FIELDS)], 1)
    values = torch.ones((rows, N_FIELDS))
    return SplitTensors(ids, values, (ids[:, 0] % 2).long())


# --- candidates and the registry ------------------------------------------------------------

def test_the_mlp_candidate_text_is_the_arch():
    candidate = parse_candidate("64-128-64")
    assert candidate == Candidate("mlp", (64, 128, 64)) and candidate.family == DEFAULT_FAMILY
    assert candidate.text == str(candidate) == "64-128-64"
    assert parse_candidate(" mlp:8-16 ") == Candidate("mlp", (8, 16))  # a prefix reads too, prints without
    assert parse_candidate(Candidate("mlp", (8, 16)).text) == Candidate("mlp", (8, 16))


def test_candidate_seed_depends_on_the_run_seed_and_the_candidate_only():
    assert Candidate("mlp", (8, 16)).seed(0) == parse_candidate("8-16").seed(0)
    seeds = {Candidate("mlp", (8,)).seed(0), Candidate("mlp", (8,)).seed(1), Candidate("mlp", (16,)).seed(0)}
    assert len(seeds) == 3 and all(0 <= s < 2**31 for s in seeds)


def test_unknown_family_and_bad_config():
    with pytest.raises(TrailsError, match="unknown model family 'trees'") as error:
        parse_candidate("trees:31-0.1")
    assert "mlp" in error.value.hint
    with pytest.raises(TrailsError):
        get_family("nope")
    with pytest.raises(TrailsError, match="cannot read arch"):
        parse_candidate("8-x")
    assert get_family(None) is MLP and "mlp" in family_names()


class _Constant:
    """A second family that predicts a constant: what the registry needs of one."""

    name, resource, export_formats = "constant", "rounds", ()

    def parse_config(self, text):
        return float(text)

    def config_text(self, config):
        return f"{config:g}"


def test_another_family_has_a_prefixed_text(monkeypatch):
    monkeypatch.setitem(base._FAMILIES, "constant", _Constant())
    candidate = parse_candidate("constant:0.5")
    assert candidate == Candidate("constant", 0.5) and candidate.text == "constant:0.5"
    assert parse_candidate(candidate.text) == candidate and "constant" in family_names()
    with pytest.raises(ValueError):
        base.register_family(type("Bad", (), {"name": "a:b"})())


def test_the_mlp_family_meets_the_protocol():
    assert isinstance(MLP, ModelFamily)
    assert isinstance(MLP.new_trial(ARCH, N_IDS, N_FIELDS, 10, SETTINGS), Trainable)
    assert MLP.resource == "epochs" and set(MLP.export_formats) == {"onnx", "torch_export"}


# --- the stored hyper ---------------------------------------------------------------------

def test_hyper_of_a_0_1_0_row_is_an_mlp():
    old = {"n_ids": 4, "n_fields": 1, "embedding_dim": 10, "batch_norm": True, "epochs": 3}
    hyper = ModelHyper.from_json(old)
    assert (hyper.family, hyper.seed, hyper.epochs, hyper.learning_rate) == ("mlp", 0, 3, None)
    assert ModelHyper.from_json({**old, "seed": None}).seed == 0


def test_hyper_json_round_trip():
    data = HYPER.to_json()
    assert data["family"] == "mlp" and "refit_rows" not in data and "extra" not in data
    assert list(data)[:11] == ["n_ids", "n_fields", "n_outputs", "embedding_dim", "batch_norm", "epochs",
                               "mlp_params", "learning_rate", "batch_size", "iter_per_epoch", "seed"]
    assert ModelHyper.from_json(data) == HYPER
    refit = dataclasses.replace(HYPER, refit_rows=300, extra={"note": "x"})
    assert refit.to_json()["refit_rows"] == 300 and refit.to_json()["note"] == "x"
    assert ModelHyper.from_json(refit.to_json()) == refit


# --- the MLP family -------------------------------------------------------------------------

def test_build_bytes_round_trip_and_parameter_count():
    torch.manual_seed(0)
    model = MLP.build(ARCH, HYPER, 2)
    assert MLP.parameter_count(ARCH, HYPER, 2) == sum(p.numel() for p in model.mlp.parameters())
    assert MLP.parameter_count(ARCH, dataclasses.replace(HYPER, batch_norm=False), 3) == \
        sum(p.numel() for p in MLP.build(ARCH, dataclasses.replace(HYPER, batch_norm=False), 3).mlp.parameters())
    data = _split()
    model.train()
    model(data.ids, data.values)  # move BatchNorm's running statistics away from their start
    restored = MLP.from_bytes(ARCH, HYPER, 2, MLP.to_bytes(model))
    assert not restored.training
    np.testing.assert_array_equal(MLP.predict(restored, BINARY_01, data.ids, data.values),
                                  MLP.predict(model, BINARY_01, data.ids, data.values))
    with pytest.raises(RuntimeError):
        MLP.from_bytes((8, 8), HYPER, 2, MLP.to_bytes(model))


def test_train_resume_and_evaluate():
    train, valid = _split(0), _split(1)
    horizon = MLP.max_iterations(4, len(train), SETTINGS)
    assert horizon == 4 * 8
    straight = MLP.new_trial(ARCH, N_IDS, N_FIELDS, horizon, SETTINGS, seed=3)
    assert len(MLP.train(straight, train, 2, SETTINGS)) == 2 and straight.epochs_trained == 2
    resumed = MLP.new_trial(ARCH, N_IDS, N_FIELDS, horizon, SETTINGS, seed=3)
    MLP.train(resumed, train, 1, SETTINGS)
    resumed = MLP.trial_from_state(resumed.export_state(), N_IDS, N_FIELDS, SETTINGS)
    MLP.train(resumed, train, 1, SETTINGS)
    for name, tensor in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor)
    assert MLP.evaluate(straight.model, valid, BINARY_01, 64) > 0.9  # the label is field 0's parity


@pytest.mark.parametrize("task", [BINARY_01, Task("multiclass", ("a", "b", "c")),
                                  Task("regression", mean=3.0, std=2.0)])
def test_exports_compute_what_predict_computes(task):
    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(1)
    model = MLP.from_bytes(ARCH, HYPER, task.n_outputs, MLP.to_bytes(MLP.build(ARCH, HYPER, task.n_outputs)))
    data = _split(2, rows=5)
    expected = MLP.predict(model, task, data.ids, data.values)
    expected = expected[:, 1] if task.kind == "binary" else expected
    session = onnxruntime.InferenceSession(MLP.export(model, task, N_FIELDS, "onnx"),
                                           providers=["CPUExecutionProvider"])
    (onnx_output,) = session.run(None, {"ids": data.ids.numpy(), "values": data.values.numpy()})
    np.testing.assert_allclose(onnx_output, expected, atol=1e-5)
    program = torch.export.load(io.BytesIO(MLP.export(model, task, N_FIELDS, "torch_export"))).module()
    for rows in (1, 5):  # the batch dimension is dynamic, down to one row
        with torch.no_grad():
            np.testing.assert_allclose(program(data.ids[:rows], data.values[:rows]).numpy(), expected[:rows],
                                       atol=1e-5)
    with pytest.raises(TrailsError, match="cannot export 'pmml'"):
        MLP.export(model, task, N_FIELDS, "pmml")


@pytest.mark.parametrize("n_fields", [1, 2])
def test_torch_export_and_load_warn_nothing(n_fields):
    """torch deprecates torch.jit (trace, save and load warn): the export is a torch.export program."""
    hyper = dataclasses.replace(HYPER, n_fields=n_fields)
    model = MLP.from_bytes(ARCH, hyper, 2, MLP.to_bytes(MLP.build(ARCH, hyper, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", FutureWarning)
        data = MLP.export(model, BINARY_01, n_fields, "torch_export")
        program = torch.export.load(io.BytesIO(data)).module()
        with torch.no_grad():
            output = program(torch.zeros((3, n_fields), dtype=torch.int64), torch.ones((3, n_fields)))
    assert output.shape == (3,)
