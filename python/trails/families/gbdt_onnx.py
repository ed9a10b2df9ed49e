"""A trees model as ONNX, with the trails graph contract (:mod:`trails.export`).

The graph takes ``ids`` int64 ``[batch, F]`` and ``values`` float32 ``[batch, F]`` and gives
``output``: P(positive class) ``[batch]`` (binary), class probabilities ``[batch, C]``
(multiclass), or the prediction in the label's units ``[batch]`` (regression) — what
``trails.predict`` gives, in float32. It is three parts:

1. the feature matrix of :func:`~trails.families.gbdt_features.feature_matrix`, as ONNX nodes:
   ``Where(numeric mask, values, Cast(ids − offsets))``, then NaN where ``ids >= n_ids − 2·F``
   or ``ids < offsets``;
2. the booster, converted by ``onnxmltools.convert_lightgbm`` (a ``TreeEnsembleClassifier`` or
   ``TreeEnsembleRegressor`` of the ``ai.onnx.ml`` domain). Categorical splits are supported:
   the converter unfolds LightGBM's ``a||b||c`` category sets into chains of ``BRANCH_EQ``
   nodes, and a NaN (missing or unknown) goes where LightGBM sends it;
3. the task's output: column 1 of the probabilities (binary), the probabilities (multiclass),
   or ``mean + std · y`` (regression).

Opsets: the graph imports the main domain at :data:`~trails.families.mlp.ONNX_OPSET`, as the
MLP's; onnxmltools 1.16 converts at main-domain opset 15 at most (:data:`CONVERTER_OPSET`), and
the few main-domain nodes it writes (``Identity``) mean the same at 17. The ``ai.onnx.ml`` opset
is the converter's (``TreeEnsemble*`` of opset 1–3; ONNX 1.23 and onnxruntime still run them).

Round-off: the trees compare float32 features with thresholds stored as float32 (LightGBM's
are float64). A value that equals a threshold rounded to float32 could take the other branch
than in LightGBM; LightGBM puts thresholds between the train values it saw, so this needs a
value within one float32 step of one, and does not happen in the tests.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType

from trails.families.gbdt_model import GbdtModel
from trails.families.mlp import ONNX_OPSET
from trails.task import Task

CONVERTER_OPSET = 15
"""The main-domain opset onnxmltools converts the booster at (the highest it supports)."""

MAIN_DOMAIN = ""

FEATURES = "features"
"""The name of the feature matrix inside the graph (the converted booster's input)."""

BATCH = "batch"

BOOSTER_PREFIX = "booster/"
"""Prefix of the converted booster's tensor names inside the graph."""


def _converted_booster(model: GbdtModel) -> onnx.ModelProto:
    """The booster alone: input :data:`FEATURES` float ``[batch, F]``; outputs the converter's
    (``probabilities`` of a classifier, ``variable`` of a regressor). A model of a booster's
    first rounds is converted from its snapshot (only those rounds)."""
    n_fields = model.feature_map.n_fields
    booster = model.booster if model.iterations is None else model.snapshot().model().booster
    return convert_lightgbm(booster, initial_types=[(FEATURES, FloatTensorType([None, n_fields]))],
                            target_opset=CONVERTER_OPSET, zipmap=False)


def _prefixed(booster: onnx.ModelProto) -> tuple[list, list]:
    """The booster's nodes and initialisers with every tensor name but :data:`FEATURES`
    prefixed by :data:`BOOSTER_PREFIX` (its names, such as ``output``, clash with the graph's)."""
    def rename(name: str) -> str:
        return name if name in (FEATURES, "") else BOOSTER_PREFIX + name

    nodes = []
    for node in booster.graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.input[:] = [rename(name) for name in node.input]
        copy.output[:] = [rename(name) for name in node.output]
        copy.name = f"{BOOSTER_PREFIX}{len(nodes)}:{node.name}"
        nodes.append(copy)
    initializers = []
    for tensor in booster.graph.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(tensor)
        copy.name = rename(tensor.name)
        initializers.append(copy)
    return nodes, initializers


def _feature_nodes(model: GbdtModel) -> tuple[list, list]:
    """Nodes and initialisers from ``ids``/``values`` to :data:`FEATURES`."""
    feature_map = model.feature_map
    initializers = [
        numpy_helper.from_array(np.asarray(feature_map.numeric, dtype=bool), "numeric_mask"),
        numpy_helper.from_array(np.asarray(feature_map.first_missing_id, dtype=np.int64), "first_missing_id"),
        numpy_helper.from_array(np.asarray(feature_map.offsets, dtype=np.int64), "id_offsets"),
        numpy_helper.from_array(np.asarray(0, dtype=np.int64), "zero_code"),
        numpy_helper.from_array(np.asarray(np.nan, dtype=np.float32), "nan"),
    ]
    nodes = [
        helper.make_node("Sub", ["ids", "id_offsets"], ["local_ids"]),
        helper.make_node("Cast", ["local_ids"], ["id_codes"], to=TensorProto.FLOAT),
        helper.make_node("Where", ["numeric_mask", "values", "id_codes"], ["known_features"]),
        helper.make_node("GreaterOrEqual", ["ids", "first_missing_id"], ["missing_or_unknown"]),
        helper.make_node("Less", ["local_ids", "zero_code"], ["below_train_ids"]),
        helper.make_node("Or", ["missing_or_unknown", "below_train_ids"], ["is_missing"]),
        helper.make_node("Where", ["is_missing", "nan", "known_features"], [FEATURES]),
    ]
    return nodes, initializers


def _output_nodes(task: Task, booster_output: str) -> tuple[list, list]:
    """Nodes and initialisers from the booster's output to ``output``."""
    if task.kind == "multiclass":
        return [helper.make_node("Identity", [booster_output], ["output"])], []
    if task.kind == "binary":
        index = numpy_helper.from_array(np.asarray(1, dtype=np.int64), "positive_column")
        return [helper.make_node("Gather", [booster_output, "positive_column"], ["output"], axis=1)], [index]
    initializers = [numpy_helper.from_array(np.asarray([-1], dtype=np.int64), "flat_shape"),
                    numpy_helper.from_array(np.asarray(task.std, dtype=np.float32), "target_std"),
                    numpy_helper.from_array(np.asarray(task.mean, dtype=np.float32), "target_mean")]
    nodes = [helper.make_node("Reshape", [booster_output, "flat_shape"], ["standardised"]),
             helper.make_node("Mul", ["standardised", "target_std"], ["scaled"]),
             helper.make_node("Add", ["scaled", "target_mean"], ["output"])]
    return nodes, initializers


def export_onnx(model: GbdtModel, task: Task) -> bytes:
    """``model`` followed by ``task``'s output as ONNX bytes (see the module docstring).

    Raises:
        ValueError: for a model of no trees (nothing to convert).
    """
    if model.booster is None:
        raise ValueError("a trees model of no trees has no ONNX graph")
    booster = _converted_booster(model)
    booster_output = BOOSTER_PREFIX + booster.graph.output[0 if task.kind == "regression" else 1].name
    booster_nodes, booster_initializers = _prefixed(booster)
    feature_nodes, feature_initializers = _feature_nodes(model)
    output_nodes, output_initializers = _output_nodes(task, booster_output)
    n_fields = model.feature_map.n_fields
    output_shape = [BATCH, task.n_outputs] if task.kind == "multiclass" else [BATCH]
    graph = helper.make_graph(
        feature_nodes + booster_nodes + output_nodes, "trails_gbdt",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [BATCH, n_fields]),
         helper.make_tensor_value_info("values", TensorProto.FLOAT, [BATCH, n_fields])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, output_shape)],
        feature_initializers + booster_initializers + output_initializers)
    opsets = [helper.make_opsetid(MAIN_DOMAIN, ONNX_OPSET)] + [
        opset for opset in booster.opset_import if opset.domain != MAIN_DOMAIN]
    exported = helper.make_model(graph, opset_imports=opsets, producer_name="trails")
    exported.ir_version = booster.ir_version
    onnx.checker.check_model(exported)
    return exported.SerializeToString()
