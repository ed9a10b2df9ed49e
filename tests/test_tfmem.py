"""TFMEMs against hand computations and independent paths; the vectorised flows against autograd."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from trails.model import TabularMLP, build_mlp
from trails.space import SearchSpace
from trails.tfmem import TfmemBatch, get_metric, metric_names, score_archs
from trails.tfmem.base import embed_batch, embedding_table, initialised_network, outputs_of
from trails.tfmem.express_flow import express_flow_of_network
from trails.tfmem.jacob_cov import correlation_score
from trails.tfmem.nas_wot import binary_code_kernel, integer_determinant, log_determinant
from trails.tfmem.synflow import synflow_of_network
from trails.tfmem.flow_reference import reference_scores
from trails.tfmem.flow_tree import memo_of
from trails.tfmem.vectorised import SharedWeights, express_flow_scores, synflow_scores

ALL_METRICS = ["express_flow", "fisher", "grad_norm", "grad_plain", "grasp", "jacflow", "jacob_cov",
               "nas_wot", "ntk_cond_num", "ntk_trace", "ntk_trace_approx", "snip", "synflow", "weight_norm"]


def make_batch(rows=16, fields=4, n_ids=30, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % 2
    return TfmemBatch.from_numpy(rng.integers(0, n_ids, (rows, fields)), rng.random((rows, fields)) + 0.5,
                                 labels, n_ids=n_ids, embedding_dim=3)


def linear_network(in_features=5, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(in_features, 2)).double()


def linear_case(rows=6, in_features=5, seed=0):
    """A one-Linear network on random inputs, with the cross-entropy gradient by hand."""
    network = linear_network(in_features, seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, in_features))
    y = np.arange(rows) % 2
    weight = network[0].weight.detach().numpy().copy()
    bias = network[0].bias.detach().numpy().copy()
    logits = x @ weight.T + bias
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    d_logits = (probabilities - np.eye(2)[y]) / rows  # ∂L/∂logits of the mean cross-entropy
    return dict(network=network, inputs=torch.from_numpy(x), labels=torch.from_numpy(y), x=x, y=y,
                weight=weight, bias=bias, logits=logits, d_logits=d_logits,
                d_weight=d_logits.T @ x, d_bias=d_logits.sum(0))


# --- registry and contract ---------------------------------------------------------------


def test_registry_lists_every_metric():
    assert metric_names() == sorted(ALL_METRICS)
    for name in ALL_METRICS:
        assert get_metric(name).name == name
    assert {name for name in ALL_METRICS if get_metric(name).data_agnostic} == {
        "synflow", "express_flow", "weight_norm"}


def test_unknown_metric_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown TFMEM 'nope'; valid: express_flow, fisher, .*weight_norm"):
        get_metric("nope")


@pytest.mark.parametrize("name", ALL_METRICS)
def test_every_metric_is_deterministic_and_score_matches_score_many(name):
    batch = make_batch()
    metric = get_metric(name)
    archs = [(8, 16), (32, 8), (16, 16)]
    many = metric.score_many(archs, batch, seed=1)
    assert many.dtype == np.float64 and many.shape == (3,)
    assert np.all(np.isfinite(many))
    np.testing.assert_allclose(metric.score_many(archs, batch, seed=1), many, rtol=1e-12)
    np.testing.assert_allclose([metric.score(arch, batch, seed=1) for arch in archs], many, rtol=1e-12)
    np.testing.assert_allclose(score_archs(name, archs, batch.in_features, 1, batch), many, rtol=1e-12)


def test_score_archs_errors():
    batch = make_batch()
    assert score_archs("express_flow", [(8, 8)], in_features=12).shape == (1,)
    with pytest.raises(ValueError, match="data-dependent"):
        score_archs("snip", [(8, 8)], in_features=12)
    with pytest.raises(ValueError, match="input features"):
        score_archs("snip", [(8, 8)], in_features=13, batch=batch)
    with pytest.raises(ValueError, match="in_features"):
        score_archs("synflow", [(8, 8)], in_features=0)


def test_batch_validation():
    with pytest.raises(ValueError, match=r"feature ids must lie in \[0, 5\)"):
        TfmemBatch.from_numpy([[0, 5]], [[1.0, 1.0]], [0], n_ids=5)
    with pytest.raises(ValueError, match="labels"):
        TfmemBatch.from_numpy([[0, 1]], [[1.0, 1.0]], [0, 1])
    with pytest.raises(ValueError, match=r"\(B, F\)"):
        TfmemBatch.from_numpy([[0, 1]], [[1.0]], [0])
    batch = make_batch()
    assert (batch.n_fields, batch.in_features, batch.n_classes) == (4, 12, 2)


# --- the model and the embedded batch ----------------------------------------------------


def test_tabular_mlp_embeds_times_values_then_runs_the_mlp():
    torch.manual_seed(0)
    model = TabularMLP(n_ids=30, n_fields=4, hidden=(8, 16), embedding_dim=3)
    batch = make_batch()
    logits = model(batch.ids, batch.values)
    assert logits.shape == (16, 2)
    manual = (model.embedding.weight[batch.ids] * batch.values[..., None]).reshape(16, 12)
    torch.testing.assert_close(logits, model.mlp(manual))
    kinds = [type(module).__name__ for module in model.mlp]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    no_bn = build_mlp(12, (8,), n_outputs=1, batch_norm=False, bias=False)
    assert [type(m).__name__ for m in no_bn] == ["Linear", "ReLU", "Linear"] and no_bn[0].bias is None


def test_embedded_batch_is_table_rows_times_values_and_the_table_is_fixed_per_seed():
    batch = make_batch()
    table = embedding_table(30, 3, 5).double()
    expected = (table[batch.ids] * batch.values.double()[..., None]).reshape(16, 12)
    torch.testing.assert_close(embed_batch(batch, 5), expected)
    assert embedding_table(30, 3, 5) is embedding_table(30, 3, 5)
    assert not torch.equal(embedding_table(30, 3, 5), embedding_table(30, 3, 6))


def test_network_metrics_score_the_seeded_network_on_the_embedded_batch():
    batch = make_batch()
    network = initialised_network((8, 16), batch.in_features, 2, seed=4)
    direct = get_metric("snip").score_network(network, embed_batch(batch, 4), batch.labels)
    assert get_metric("snip").score((8, 16), batch, seed=4) == pytest.approx(direct, rel=1e-12)


# --- gradient metrics on a one-Linear network, by hand -----------------------------------


def test_grad_norm_snip_grad_plain_by_hand():
    case = linear_case()
    grad_norm = get_metric("grad_norm").score_network(case["network"], case["inputs"], case["labels"])
    assert grad_norm == pytest.approx(np.linalg.norm(case["d_weight"]), rel=1e-10)
    snip = get_metric("snip").score_network(case["network"], case["inputs"], case["labels"])
    assert snip == pytest.approx(np.abs(case["d_weight"] * case["weight"]).sum(), rel=1e-10)
    plain = get_metric("grad_plain").score_network(case["network"], case["inputs"], case["labels"])
    assert plain == pytest.approx((case["d_weight"] * case["weight"]).sum(), rel=1e-10)


def test_grad_norm_matches_autograd_on_a_batch_norm_network():
    batch = make_batch()
    network = initialised_network((8, 16), batch.in_features, 2, seed=0)
    inputs = embed_batch(batch, 0)
    loss = nn.functional.cross_entropy(network(inputs), batch.labels)
    loss.backward()
    expected = sum(m.weight.grad.norm().item() for m in network.modules() if isinstance(m, nn.Linear))
    network.zero_grad()
    assert get_metric("grad_norm").score_network(network, inputs, batch.labels) == pytest.approx(expected, rel=1e-10)


def test_fisher_by_hand():
    case = linear_case()
    per_channel = 0.5 * ((case["logits"] * case["d_logits"]) ** 2).mean(axis=0)
    expected = case["x"].shape[1] * per_channel.sum()  # each channel spread over its fan-in weights
    assert get_metric("fisher").score_network(case["network"], case["inputs"], case["labels"]) == \
        pytest.approx(expected, rel=1e-10)


def test_ntk_trace_cond_num_and_approx_by_hand():
    case = linear_case()
    x, y = case["x"], case["y"]
    # f_i = W[y_i]·x_i + b[y_i]: ∂f_i/∂W = e_{y_i} x_iᵀ, ∂f_i/∂b = e_{y_i}
    kernel = (y[:, None] == y[None, :]) * (x @ x.T + 1.0)
    trace = get_metric("ntk_trace").score_network(case["network"], case["inputs"], case["labels"])
    assert trace == pytest.approx(np.trace(kernel), rel=1e-10)
    eigenvalues = np.linalg.eigvalsh(kernel)
    cond = get_metric("ntk_cond_num").score_network(case["network"], case["inputs"], case["labels"])
    assert cond == pytest.approx(-eigenvalues[-1] / eigenvalues[0], rel=1e-8)
    approx = get_metric("ntk_trace_approx").score_network(case["network"], case["inputs"], case["labels"])
    assert approx == pytest.approx(((case["d_weight"] ** 2).sum() + (case["d_bias"] ** 2).sum()) / 2, rel=1e-10)


def test_grasp_matches_a_hessian_vector_product_from_torch_func():
    batch = make_batch()
    network = initialised_network((6, 5), batch.in_features, 2, seed=2)
    inputs = embed_batch(batch, 2)
    names = [name for name, _ in network.named_parameters() if name.endswith("weight")
             and isinstance(network.get_submodule(name.rsplit(".", 1)[0]), nn.Linear)]
    base = {name: p.detach().clone() for name, p in network.named_parameters()}
    buffers = {name: b.clone() for name, b in network.named_buffers()}

    def loss_of(*weights):
        parameters = dict(base, **dict(zip(names, weights)))
        output = torch.func.functional_call(network, (parameters, buffers), (inputs,))
        return nn.functional.cross_entropy(output, batch.labels)

    weights = tuple(base[name] for name in names)
    primal = [w.clone().requires_grad_() for w in weights]
    gradient = torch.autograd.grad(loss_of(*primal), primal)
    _, hessian_gradient = torch.autograd.functional.hvp(loss_of, weights, tuple(gradient))
    expected = -sum((w * hg).sum().item() for w, hg in zip(weights, hessian_gradient))
    assert get_metric("grasp").score_network(network, inputs, batch.labels) == pytest.approx(expected, rel=1e-8)


# --- activation-pattern and Jacobian metrics ---------------------------------------------


def hamming_kernel(codes):
    """K[i, j] = Σ_layers (units − Hamming distance of rows i and j), by the definition."""
    rows = codes[0].shape[0]
    kernel = np.zeros((rows, rows), dtype=np.int64)
    for code in codes:
        for i in range(rows):
            for j in range(rows):
                kernel[i, j] += code.shape[1] - np.sum(code[i] != code[j])
    return kernel


def test_nas_wot_kernel_is_the_hamming_kernel_of_the_relu_codes():
    batch = make_batch(rows=10)
    network = initialised_network((7, 5), batch.in_features, 2, seed=3)
    inputs = embed_batch(batch, 3)
    codes, hidden = [], inputs
    with torch.no_grad():
        for module in network:
            hidden = module(hidden)
            if isinstance(module, nn.ReLU):
                codes.append((hidden > 0).numpy())
    expected = hamming_kernel(codes)
    activations = outputs_of(network, nn.ReLU, inputs)[1]
    np.testing.assert_array_equal(binary_code_kernel(activations), expected)  # integers: exact
    assert get_metric("nas_wot").score_network(network, inputs, batch.labels) == log_determinant(expected)


def test_nas_wot_log_determinant_of_well_conditioned_kernels():
    # rows with distinct one-hot codes plus an always-on layer: K = units·I + ones, det known
    for rows, units in ((4, 4), (10, 12), (32, 40)):
        code = np.zeros((rows, units), dtype=np.int64)
        code[np.arange(rows), np.arange(rows)] = 1
        kernel = hamming_kernel([code])
        # K = (units − 2)·1·1ᵀ + 2·I: eigenvalues 2 (rows − 1 times) and 2 + rows·(units − 2)
        expected = (rows - 1) * math.log(2) + math.log(2 + rows * (units - 2))
        assert log_determinant(kernel) == pytest.approx(expected, rel=1e-9)
        assert log_determinant(kernel) == pytest.approx(np.linalg.slogdet(kernel)[1], rel=1e-9)
    rng = np.random.default_rng(0)
    codes = [rng.random((32, 300)) > 0.5 for _ in range(3)]
    kernel = hamming_kernel(codes)
    assert log_determinant(kernel) == pytest.approx(np.linalg.slogdet(kernel)[1], rel=1e-9)
    assert log_determinant(kernel) == pytest.approx(math.log(integer_determinant(kernel)), rel=1e-9)


def test_nas_wot_of_a_singular_kernel_is_minus_infinity_on_every_cpu():
    rng = np.random.default_rng(1)
    code = rng.random((10, 12)) > 0.5
    code[7] = code[2]  # two rows with the same code: det K = 0 exactly
    assert log_determinant(hamming_kernel([code])) == -math.inf
    # a dependence without equal rows: row 3's code is the complement of row 0's, and rows 0, 3
    # and an all-on / all-off pair span the same space
    dependent = np.array([[1, 0, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0], [0, 1, 0, 1]], dtype=bool)
    assert integer_determinant(hamming_kernel([dependent])) == 0
    assert log_determinant(hamming_kernel([dependent])) == -math.inf


def test_integer_determinant_is_exact():
    assert integer_determinant(np.array([[2, 1], [1, 2]])) == 3
    assert integer_determinant(np.array([[0, 1], [1, 0]])) == -1  # needs a row swap
    assert integer_determinant(np.array([[0, 0], [0, 5]])) == 0
    rng = np.random.default_rng(2)
    for _ in range(5):
        matrix = rng.integers(-3, 4, (5, 5))
        assert integer_determinant(matrix) == round(np.linalg.det(matrix))
    big = np.diag(np.full(40, 1000))  # 1000**40: far beyond float64's 53-bit mantissa
    assert integer_determinant(big) == 1000 ** 40


def test_jacob_cov_matches_torch_jacobian_and_the_formula():
    batch = make_batch(rows=8)
    network = initialised_network((6,), batch.in_features, 2, seed=5)
    inputs = embed_batch(batch, 5)
    full = torch.autograd.functional.jacobian(lambda x: network(x).sum(), inputs).numpy()  # (B, D)
    centred = full - full.mean(1, keepdims=True)
    correlation = (centred @ centred.T) / np.outer(np.linalg.norm(centred, axis=1), np.linalg.norm(centred, axis=1))
    eigenvalues = np.linalg.eigvalsh(correlation)
    expected = -np.sum(np.log(eigenvalues + 1e-5) + 1 / (eigenvalues + 1e-5))
    assert get_metric("jacob_cov").score_network(network, inputs, batch.labels) == pytest.approx(expected, rel=1e-8)
    assert correlation_score(np.ones((3, 4))) == -math.inf  # constant rows: undefined correlation


def test_weight_norm_by_hand():
    network = initialised_network((8, 4), 12, 2, seed=9)
    expected = sum(np.sqrt((m.weight.detach().numpy() ** 2).sum()) for m in network if isinstance(m, nn.Linear))
    assert get_metric("weight_norm").score_features([(8, 4)], 12, seed=9)[0] == pytest.approx(expected, rel=1e-12)


def test_jacflow_is_log_synflow_plus_nas_wot():
    batch = make_batch()
    archs = [(8, 16), (16, 8)]
    expected = np.log(get_metric("synflow").score_many(archs, batch, 0)) + get_metric("nas_wot").score_many(archs, batch, 0)
    np.testing.assert_allclose(get_metric("jacflow").score_many(archs, batch, 0), expected, rtol=1e-12)


# --- SynFlow and ExpressFlow -------------------------------------------------------------


def two_layer_network(weights):
    network = build_mlp(weights[0].shape[1], [w.shape[0] for w in weights[:-1]], weights[-1].shape[0],
                        batch_norm=False, bias=False).double()
    with torch.no_grad():
        for layer, weight in zip([m for m in network if isinstance(m, nn.Linear)], weights):
            layer.weight.copy_(torch.tensor(weight, dtype=torch.float64))
    return network


def test_synflow_by_hand_on_a_two_layer_network():
    w1 = np.array([[1.0, -2.0, 3.0], [-1.0, 0.5, 2.0]])
    w2 = np.array([[2.0, -1.0], [0.5, 1.0]])
    network = two_layer_network([w1, w2])
    # |W1|·1 = (6, 3.5); column sums of |W2| = (2.5, 2); R = 4 rows × (2.5·6 + 2·3.5) = 88.
    # Output layer: Σ|W2 ⊙ ∂R/∂W2| = 4 Σ_kj |W2|_kj z1_j = 88; first layer likewise 88.
    assert synflow_of_network(network, 3) == pytest.approx(176.0, rel=1e-14)
    np.testing.assert_array_equal(network[0].weight.detach().numpy(), w1)  # signs restored


def test_synflow_by_hand_counts_the_biases_in_the_forward_pass():
    network = build_mlp(3, [2], 2, batch_norm=False).double()
    with torch.no_grad():
        network[0].weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [-1.0, 0.5, 2.0]]))
        network[0].bias.copy_(torch.tensor([0.5, -1.0]))
        network[2].weight.copy_(torch.tensor([[2.0, -1.0], [0.5, 1.0]]))
        network[2].bias.copy_(torch.tensor([-3.0, 7.0]))
    # z1 = |W1|·1 + |b1| = (6.5, 4.5); column sums of |W2| = (2.5, 2). The sum runs over the
    # weights (as TRAILS'): output layer 4 × (2.5·6.5 + 2·4.5) = 101, first layer
    # 4 × (2.5·6 + 2·3.5) = 88 (its bias is downstream of W1); the output bias adds nothing.
    assert synflow_of_network(network, 3) == pytest.approx(189.0, rel=1e-14)
    assert network[0].bias[1].item() == -1.0  # signs restored


def test_biases_raise_both_flows_above_the_bias_free_ones(shared):
    archs = [(8, 8, 8, 8), (512, 64, 512, 64), (100, 200, 300, 400)]
    bias_free = SharedWeights(in_features=40, layers=4, max_width=512, seed=3)
    for layer in range(4):
        bias_free.hidden_bias[layer] = np.zeros_like(bias_free.hidden_bias[layer])
    bias_free.output_bias = np.zeros_like(bias_free.output_bias)
    for metric, vectorised in (("synflow", synflow_scores), ("express_flow", express_flow_scores)):
        np.testing.assert_array_less(vectorised(archs, bias_free), vectorised(archs, shared))
        reference = [reference_scores(metric, arch, bias_free) for arch in archs]
        np.testing.assert_allclose(vectorised(archs, bias_free), reference, rtol=1e-9, atol=0)


def test_express_flow_by_hand_on_a_two_hidden_layer_network():
    rng = np.random.default_rng(0)
    w1, w2, w3 = rng.standard_normal((4, 3)), rng.standard_normal((5, 4)), rng.standard_normal((2, 5))
    perturbation = rng.standard_normal((4, 3))
    a1, a2, a3 = np.abs(w1), np.abs(w2), np.abs(w3)
    ones = np.ones((4, 3))

    def hidden(x):
        z1 = np.maximum(x @ a1.T, 0)
        return z1, np.maximum(z1 @ a2.T, 0)

    z1, z2 = hidden(ones)
    g2 = np.ones((4, 2)) @ a3  # ∂R/∂z2
    g1 = g2 @ a2  # ∂R/∂z1 (ReLUs are identities here)
    p1, p2 = hidden(ones + 1e-5 * perturbation)
    trajectory = np.array([np.linalg.norm(p1 - z1), np.linalg.norm(p2 - z2)]) / 1e-5
    omega = (1 / trajectory) / (1 / trajectory).sum()
    expected = omega[0] * 4 * (z1 * g1).sum() + omega[1] * 5 * (z2 * g2).sum()
    network = two_layer_network([w1, w2, w3])
    assert express_flow_of_network(network, torch.from_numpy(perturbation)) == pytest.approx(expected, rel=1e-9)


@pytest.fixture(scope="module")
def shared():
    return SharedWeights(in_features=40, layers=4, max_width=512, seed=3)


def test_vectorised_flows_agree_with_autograd_to_1e_9(shared):
    rng = np.random.default_rng(1)
    space = SearchSpace()
    archs = [space.sample(rng) for _ in range(32)] + [(8, 8, 8, 8), (512, 512, 512, 512), (8, 512, 8, 512)]
    archs += [archs[0]]  # a duplicate
    for metric, vectorised in (("synflow", synflow_scores), ("express_flow", express_flow_scores)):
        fast = vectorised(archs, shared)
        reference = np.array([reference_scores(metric, arch, shared) for arch in archs])
        np.testing.assert_allclose(fast, reference, rtol=1e-9, atol=0)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_vectorised_flows_agree_for_shallower_archs(shared, depth):
    rng = np.random.default_rng(depth)
    archs = [tuple(int(w) for w in rng.choice([8, 24, 100, 512], depth)) for _ in range(12)]
    for metric, vectorised in (("synflow", synflow_scores), ("express_flow", express_flow_scores)):
        reference = [reference_scores(metric, arch, shared) for arch in archs]
        np.testing.assert_allclose(vectorised(archs, shared), reference, rtol=1e-9, atol=0)


def test_an_arch_score_depends_on_nothing_but_arch_in_features_and_seed():
    space = SearchSpace()
    rng = np.random.default_rng(2)
    archs = [space.sample(rng) for _ in range(5000)]  # more than one chunk of flow_statistics
    together = score_archs("express_flow", archs, 40, seed=3)
    alone = [score_archs("express_flow", [arch], 40, seed=3)[0] for arch in archs[:5]]
    np.testing.assert_allclose(alone, together[:5], rtol=1e-12)
    np.testing.assert_allclose(score_archs("express_flow", archs[::-1], 40, seed=3), together[::-1], rtol=1e-12)
    small, large = SharedWeights(40, 2, 100, 3), SharedWeights(40, 3, 700, 3)
    for small_layer, large_layer in zip(small.hidden, large.hidden):
        np.testing.assert_array_equal(small_layer, large_layer[:100, :small_layer.shape[1]])
    np.testing.assert_array_equal(small.perturbation, large.perturbation)
    assert not np.allclose(score_archs("express_flow", archs[:5], 40, seed=4), together[:5])


def test_shared_weights_follow_the_default_linear_init_in_magnitude():
    shared = SharedWeights(in_features=100, layers=2, max_width=512, seed=0)
    weight = shared.arch_weights((256, 64))[1]  # fan-in 256
    assert weight.shape == (64, 256)
    assert weight.min() >= 0 and weight.max() <= 1 / 16
    assert weight.mean() == pytest.approx(0.5 / 16, rel=0.02)  # |U(−1/√256, 1/√256)| has mean 1/32
    with pytest.raises(ValueError):
        shared.arch_weights((1024, 8))


def test_many_small_calls_score_as_one_call_whatever_the_memo_holds():
    """The kernels keep the prefixes they walked per SharedWeights; scores must not depend on it."""
    space = SearchSpace()
    rng = np.random.default_rng(4)
    archs = [space.sample(rng) for _ in range(600)]
    fresh = SharedWeights(in_features=40, layers=4, max_width=512, seed=5)
    rounds = np.concatenate([express_flow_scores(archs[start:start + 30], fresh) for start in range(0, 600, 30)])
    assert memo_of(fresh).blocks  # the prefixes of length 2 were kept
    once = express_flow_scores(archs, SharedWeights(in_features=40, layers=4, max_width=512, seed=5))
    np.testing.assert_allclose(rounds, once, rtol=1e-12)
    np.testing.assert_allclose(synflow_scores(archs[:50], fresh),
                               [reference_scores("synflow", arch, fresh) for arch in archs[:50]], rtol=1e-9)


def test_a_full_memo_keeps_nothing_more_and_scores_the_same():
    shared = SharedWeights(in_features=40, layers=4, max_width=512, seed=6)
    memo = memo_of(shared)
    memo.max_bytes = 0  # nothing fits
    archs = [(8, 512, 24, 100), (512, 8, 100, 24), (100, 100, 8, 8)]
    np.testing.assert_allclose(express_flow_scores(archs, shared),
                               [reference_scores("express_flow", arch, shared) for arch in archs], rtol=1e-9)
    assert memo.bytes == 0 and not memo.blocks


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_one_arch_per_node_or_many_agree(depth):
    """Archs sharing every width but the last (one tree node) and archs sharing nothing."""
    shared = SharedWeights(in_features=40, layers=5, max_width=512, seed=7)
    widths = [8, 24, 100, 384, 512]
    siblings = [tuple([100] * (depth - 1) + [width]) for width in widths]
    rng = np.random.default_rng(depth)
    strangers = [tuple(int(w) for w in rng.choice(widths, depth)) for _ in range(10)]
    for archs in (siblings, strangers):
        for metric, vectorised in (("synflow", synflow_scores), ("express_flow", express_flow_scores)):
            reference = [reference_scores(metric, arch, shared) for arch in archs]
            np.testing.assert_allclose(vectorised(archs, shared), reference, rtol=1e-9, atol=0)
