"""Training precision (no database): the setting is validated, ``auto`` follows the CPU's
bfloat16 instructions, ``fp32`` trains exactly as a plain float32 loop without autocast, and
``bf16`` trains on the CPU under autocast with float32 weights and a float32 evaluation."""

import configparser
import contextlib
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from trails.config import defaults_text
from trails.errors import TrailsError
from trails.model import build_model
from trails.refinement.data import SplitTensors
from trails.refinement.precision import PRECISIONS, cpu_has_native_bf16, resolve_precision
from trails.refinement.trainer import (CosineDecay, Trial, TrainingSettings, evaluate_auc,
                                       iterations_per_epoch, train)

N_FIELDS, PER_FIELD = 4, 30
N_IDS = N_FIELDS * PER_FIELD
ARCH = (16, 8)
BATCH, ITERATIONS, EPOCHS = 64, 12, 3


def synthetic(n_rows: int, seed: int) -> SplitTensors:
    """Rows whose label is a fixed linear rule of one-hot fields (learnable, not trivial)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, PER_FIELD, (n_rows, N_FIELDS), generator=generator)
    ids += torch.arange(N_FIELDS) * PER_FIELD
    weights = torch.randn(N_IDS, generator=torch.Generator().manual_seed(1234))
    labels = (weights[ids].sum(dim=1) > 0).long()
    return SplitTensors(ids, torch.ones(n_rows, N_FIELDS), labels)


def settings(precision: str) -> TrainingSettings:
    # train_threads=0: the process's threads, as the plain loop below uses (a thread count changes
    # a matmul's round-off, and these tests compare weights exactly)
    return TrainingSettings(batch_size=BATCH, iter_per_epoch=ITERATIONS, learning_rate=1e-2,
                            embedding_dim=4, precision=precision, train_threads=0)


def new_trial(precision: str, seed: int = 3) -> Trial:
    return Trial(ARCH, N_IDS, N_FIELDS, EPOCHS * ITERATIONS, settings(precision), seed=seed)


def record_autocast(model: torch.nn.Module) -> list[tuple[bool, torch.dtype]]:
    """A list that every forward pass of ``model`` appends (autocast enabled?, logits dtype) to."""
    seen: list[tuple[bool, torch.dtype]] = []
    model.register_forward_hook(
        lambda module, inputs, output: seen.append((torch.is_autocast_enabled("cpu"), output.dtype)))
    return seen


# -- the setting ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["fp16", "BF16", "", "float32"])
def test_an_unknown_precision_is_rejected_naming_the_valid_values(bad):
    for raise_it in (lambda: TrainingSettings(precision=bad).validate(),
                     lambda: resolve_precision(bad, "cpu"),
                     lambda: new_trial(bad)):
        with pytest.raises(TrailsError, match="precision") as error:
            raise_it()
        assert "auto, fp32, bf16" in str(error.value)


def test_precision_is_read_from_the_refinement_section():
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(defaults_text())
    assert TrainingSettings.from_config(config).precision == "auto"  # the shipped default
    config.set("refinement", "precision", "bf16")
    assert TrainingSettings.from_config(config).precision == "bf16"
    assert TrainingSettings.from_config(config, precision="fp32").precision == "fp32"
    config.set("refinement", "precision", "half")
    with pytest.raises(TrailsError, match="'half'"):
        TrainingSettings.from_config(config)
    assert set(PRECISIONS) == {"auto", "fp32", "bf16"}


# -- resolving it for a device ----------------------------------------------------------------


def test_auto_on_the_cpu_follows_its_bfloat16_instructions():
    expected = torch.bfloat16 if cpu_has_native_bf16() else None
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("auto", torch.device("cpu")) == expected
    assert resolve_precision("fp32", "cpu") is None
    assert resolve_precision("bf16", "cpu") == torch.bfloat16


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs /proc/cpuinfo")
def test_the_cpuinfo_fallback_agrees_with_torch(monkeypatch):
    from_torch = cpu_has_native_bf16()
    cpu_has_native_bf16.cache_clear()
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    try:
        assert cpu_has_native_bf16() == from_torch
    finally:
        cpu_has_native_bf16.cache_clear()


def test_detection_reads_the_bf16_capabilities(monkeypatch):
    for capabilities, expected in (({"avx512_bf16": True}, True), ({"amx_bf16": True}, True),
                                   ({"avx2": True, "avx512_f": True}, False)):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities, raising=False)
        cpu_has_native_bf16.cache_clear()
        assert cpu_has_native_bf16() is expected
        assert resolve_precision("auto", "cpu") == (torch.bfloat16 if expected else None)
    cpu_has_native_bf16.cache_clear()


@pytest.mark.parametrize("supported", [True, False])
def test_cuda_uses_bf16_only_where_the_device_supports_it(monkeypatch, supported):
    asked = []
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: asked.append(including_emulation) or supported)
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())  # no GPU here
    assert resolve_precision("fp32", "cuda") is None
    assert resolve_precision("auto", "cuda:0") == (torch.bfloat16 if supported else None)
    if supported:
        assert resolve_precision("bf16", "cuda") == torch.bfloat16
    else:
        with pytest.raises(TrailsError, match="bf16 is not supported on cuda"):
            resolve_precision("bf16", "cuda")
    assert asked[0] is False  # auto asks for native bf16, not emulated


# -- training ---------------------------------------------------------------------------------


def plain_float32_training(seed: int, data: SplitTensors) -> dict:
    """The float32 loop written out with nothing but PyTorch: no autocast anywhere."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(ARCH, N_IDS, N_FIELDS, embedding_dim=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, CosineDecay(EPOCHS * ITERATIONS))
    generator = torch.Generator().manual_seed(seed)
    per_epoch = iterations_per_epoch(len(data), BATCH, ITERATIONS)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(data), generator=generator)
        for step in range(per_epoch):
            rows = order[step * BATCH:(step + 1) * BATCH]
            loss = F.cross_entropy(model(data.ids[rows], data.values[rows]), data.labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return model.state_dict()


def test_fp32_trains_exactly_as_the_plain_loop_without_autocast():
    data = synthetic(1000, seed=0)
    trial = new_trial("fp32")
    seen = record_autocast(trial.model)
    train(trial, data, EPOCHS, BATCH, ITERATIONS)
    assert trial.autocast_dtype is None
    assert seen and all(entry == (False, torch.float32) for entry in seen)
    expected = plain_float32_training(3, data)
    trained = trial.model.state_dict()
    assert trained.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(trained[name], tensor), name


def test_auto_trains_exactly_as_fp32_where_it_resolves_to_fp32():
    if resolve_precision("auto", "cpu") is not None:
        pytest.skip("this CPU has bfloat16 instructions: auto is bf16 here")
    data = synthetic(1000, seed=0)
    automatic, float32 = new_trial("auto"), new_trial("fp32")
    assert automatic.autocast_dtype is None
    assert train(automatic, data, 2, BATCH, ITERATIONS) == train(float32, data, 2, BATCH, ITERATIONS)
    for name, tensor in float32.model.state_dict().items():
        assert torch.equal(automatic.model.state_dict()[name], tensor), name


def test_bf16_trains_on_the_cpu_with_float32_weights_and_a_float32_evaluation():
    data, valid = synthetic(2000, seed=0), synthetic(1000, seed=1)
    trial = new_trial("bf16")
    assert trial.autocast_dtype == torch.bfloat16
    seen = record_autocast(trial.model)
    losses = train(trial, data, EPOCHS, BATCH, ITERATIONS)
    assert len(losses) == EPOCHS and all(math.isfinite(loss) for loss in losses)
    assert losses[0] > losses[1] > losses[2]
    assert seen and all(entry == (True, torch.bfloat16) for entry in seen)
    assert all(tensor.dtype == torch.float32 for tensor in trial.model.parameters())
    assert all(state["exp_avg"].dtype == torch.float32 for state in trial.optimizer.state.values())
    seen.clear()
    auc = evaluate_auc(trial.model, valid)
    assert seen and all(entry == (False, torch.float32) for entry in seen)
    assert 0.5 < auc <= 1.0
