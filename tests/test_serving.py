"""Serving without torch (trails.serving): the stored weights read as torch reads them, the numpy
forward pass and the one-row encoder giving what the training code's path gives."""

import math

import numpy as np
import pytest
import torch

from trails.data.layout import Field, Layout
from trails.data.row_values import columns_from_rows
from trails.errors import TrailsError
from trails.model import build_model, predict_outputs, state_from_bytes, state_to_bytes
from trails.serving.mlp_forward import MlpForward
from trails.serving.row_encoder import RowEncoder
from trails.serving.torch_weights import read_state
from trails.task import BINARY_01, Task

TASKS = [BINARY_01, Task("multiclass", ("a", "b", "c")), Task("regression", mean=3.0, std=2.0)]


def _trained_looking(task, batch_norm=True):
    """A network whose batch norms hold running statistics (as after training), in eval mode."""
    torch.manual_seed(0)
    network = build_model((32, 16, 8), n_ids=20, n_fields=3, embedding_dim=4, batch_norm=batch_norm,
                          n_outputs=task.n_outputs)
    network.train()
    with torch.no_grad():
        for _ in range(3):
            network(torch.randint(0, 20, (64, 3)), torch.rand(64, 3) * 2)
    return network.eval()


def _rows(n=200, seed=1):
    generator = np.random.default_rng(seed)
    return generator.integers(0, 20, (n, 3)), generator.random((n, 3)).astype(np.float32) * 2


def test_stored_weights_read_without_torch_as_torch_loads_them():
    data = state_to_bytes(_trained_looking(BINARY_01).state_dict())
    ours, torchs = read_state(data), state_from_bytes(data)
    assert ours.keys() == torchs.keys()
    for name, tensor in torchs.items():
        assert ours[name].dtype == tensor.numpy().dtype and ours[name].shape == tuple(tensor.shape), name
        np.testing.assert_array_equal(ours[name], tensor.numpy())


def test_weights_that_are_not_a_state_dict_are_refused():
    with pytest.raises(TrailsError, match="not a state_dict"):
        read_state(b"not a zip at all")
    with pytest.raises(TrailsError, match="not a state_dict"):  # a pickle that names other globals
        buffer = __import__("io").BytesIO()
        torch.save({"w": torch.zeros(2), "f": math.floor}, buffer)
        read_state(buffer.getvalue())


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.kind)
@pytest.mark.parametrize("batch_norm", [True, False])
def test_numpy_forward_predicts_what_torch_predicts(task, batch_norm):
    network = _trained_looking(task, batch_norm)
    forward = MlpForward(read_state(state_to_bytes(network.state_dict())), task)
    ids, values = _rows()
    expected = predict_outputs(network, task, ids, values)
    np.testing.assert_allclose(forward.outputs(ids, values), expected, rtol=1e-6, atol=1e-6)
    one_by_one = np.array([forward.row_outputs(ids[i].tolist(), values[i].tolist()) for i in range(len(ids))])
    np.testing.assert_allclose(one_by_one, expected, rtol=1e-6, atol=1e-6)


LAYOUT = Layout("label", BINARY_01, [
    Field("colour", "categorical", "text", 0, 3, missing_id=8, unknown_id=9, values=["blue", "green", "red"]),
    Field("size", "numeric", "float8", 3, 1, missing_id=10, unknown_id=11, mean=2.5, std=1.5),
    Field("flag", "categorical", "boolean", 4, 2, missing_id=12, unknown_id=13, values=["false", "true"]),
    Field("count", "categorical", "integer", 6, 2, missing_id=14, unknown_id=15, values=["1", "7"]),
], {}, 100)


def test_one_row_encodes_as_the_table_path_encodes():
    rows = [{"colour": "red", "size": 4.0, "flag": True, "count": 7},
            {"colour": "purple", "size": None, "flag": False, "count": 3},  # unknown category, NULL number
            {"colour": "", "size": "NaN", "flag": None, "count": None},  # '' is missing; NaN is missing
            {"colour": None, "size": "Infinity", "flag": True, "count": 1, "other": [1]},  # extra column ignored
            {"colour": "blue", "size": 7, "flag": False, "count": 7.0},  # an int number, a float category
            {"colour": "green", "size": -1e30, "flag": True, "count": 1}]
    ids, values, _ = LAYOUT.encode(columns_from_rows(LAYOUT, rows))
    encoder = RowEncoder(LAYOUT, 1, "paint")
    for i, row in enumerate(rows):
        row_ids, row_values = encoder.encode(row)
        assert row_ids == ids[i].tolist(), row
        np.testing.assert_array_equal(np.array(row_values, dtype=np.float32), values[i])


@pytest.mark.parametrize("row, message", [
    ({"colour": "red", "size": 1.0}, "lacks 2 of the 4 columns model 1 reads: flag, count"),
    ({"colour": "red", "size": "big", "flag": True, "count": 1}, "size (a number expected, got str"),
    ({"colour": "red", "size": True, "flag": True, "count": 1}, "size (a number expected, got bool"),
    ({"colour": {"a": 1}, "size": 1, "flag": True, "count": 1}, "colour (a scalar expected, got dict"),
])
def test_a_row_the_model_cannot_read_is_refused_naming_the_columns(row, message):
    with pytest.raises(TrailsError, match=message.replace("(", r"\(")):
        RowEncoder(LAYOUT, 1, "paint").encode(row)


def test_serving_imports_no_torch():
    """What a backend imports to predict (either family, one row or a table) holds no torch:
    the first row of a new backend does not pay ~1 s for it (a numeric field's piecewise
    embedding once pulled it in through trails.piecewise)."""
    import subprocess
    import sys

    script = ("import sys\nimport trails.sql_api, trails.predict, trails.serving.scorer\n"
              "import trails.serving.mlp_forward, trails.serving.trees_forward, trails.data.table_reader\n"
              "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
