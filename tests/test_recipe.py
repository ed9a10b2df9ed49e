"""An MLP candidate's recipe (trails.refinement.recipe, trails.families.mlp_config): its text,
what it changes in training, and that the network it trains is stored, served and resumed as
any other MLP's. No database."""

from __future__ import annotations

import pytest
import torch

from trails.errors import TrailsError
from trails.families import MLP, Candidate, ModelHyper, parse_candidate
from trails.families.mlp_config import MlpConfig, arch_and_recipe, mlp_config
from trails.model import ReLUDropout
from trails.refinement.recipe import PORTFOLIO, REGULARISED, Recipe
from trails.refinement.settings import TrainingSettings
from trails.refinement.trainer import Trial, train
from test_halving import N_FIELDS, N_IDS, synthetic

SETTINGS = TrainingSettings(batch_size=128, iter_per_epoch=5, learning_rate=1e-2)


def test_text_round_trips_and_the_default_recipe_is_the_plain_arch():
    assert REGULARISED.text == "drop=0.3,wd=0.1,eml2=0.001"
    assert Recipe.parse("eml2=0.001, drop=0.3,wd=0.1") == REGULARISED and Recipe.parse("") == Recipe()
    assert PORTFOLIO[0].is_default and not REGULARISED.is_default
    assert mlp_config((8, 16)) == (8, 16) and mlp_config((8, 16), Recipe()) == (8, 16)
    config = mlp_config((8, 16), REGULARISED)
    assert config == MlpConfig((8, 16), REGULARISED) and arch_and_recipe(config) == ((8, 16), REGULARISED)
    candidate = Candidate("mlp", config)
    assert candidate.text == "8-16/drop=0.3,wd=0.1,eml2=0.001" and parse_candidate(candidate.text) == candidate
    assert parse_candidate("8-16") == Candidate("mlp", (8, 16))  # a stored arch reads as before
    assert candidate.seed(0) != Candidate("mlp", (8, 16)).seed(0)  # another candidate, its own seed
    resumed = parse_candidate(candidate.text + "@model7")
    assert resumed.resumed_from == 7 and resumed.stored_text == candidate.text


@pytest.mark.parametrize("text, message", [("drop", "bad part"), ("lr=0.1", "bad part"),
                                           ("drop=0.1,drop=0.2", "bad part"), ("wd=much", "not a number")])
def test_a_recipe_that_cannot_be_read_is_refused(text, message):
    with pytest.raises(TrailsError, match=message) as error:
        parse_candidate(f"8-16/{text}")
    assert error.value.hint


def test_apply_overrides_only_what_the_recipe_sets_and_validates():
    settings = TrainingSettings(dropout=0.1, weight_decay=0.5)
    applied = Recipe(dropout=0.3).apply(settings)
    assert (applied.dropout, applied.weight_decay, applied.embedding_l2) == (0.3, 0.5, 0.0)
    assert Recipe().apply(settings) is settings
    with pytest.raises(TrailsError, match="dropout"):
        Recipe(dropout=1.0).apply(settings)


def test_a_trial_trains_with_its_recipe_and_resumes_with_it():
    config = mlp_config((16, 8), REGULARISED)
    trial = MLP.new_trial(config, N_IDS, N_FIELDS, 10**6, SETTINGS, seed=3)
    assert trial.candidate == Candidate("mlp", config)
    assert isinstance(trial.optimizer, torch.optim.AdamW) and trial.settings.embedding_l2 == 1e-3
    assert any(isinstance(module, ReLUDropout) and module.p == 0.3 for module in trial.model.mlp)
    plain = MLP.new_trial((16, 8), N_IDS, N_FIELDS, 10**6, SETTINGS, seed=3)
    assert type(plain.optimizer) is torch.optim.Adam and plain.candidate == Candidate("mlp", (16, 8))
    # the same state_dict keys as a plain network: stored, served and exported alike
    assert list(trial.model.state_dict()) == list(plain.model.state_dict())
    data = synthetic(600, 5)
    train(trial, data, 1, 128, 5)
    rebuilt = MLP.trial_from_state(trial.export_state(), N_IDS, N_FIELDS, SETTINGS)
    assert rebuilt.settings == trial.settings and isinstance(rebuilt.optimizer, torch.optim.AdamW)
    train(trial, data, 1, 128, 5)
    train(rebuilt, data, 1, 128, 5)
    for name, tensor in trial.model.state_dict().items():
        assert torch.equal(tensor, rebuilt.model.state_dict()[name]), name
    hyper = ModelHyper(n_ids=N_IDS, n_fields=N_FIELDS, embedding_dim=SETTINGS.embedding_dim, batch_norm=True)
    stored = MLP.from_bytes(config, hyper, 2, MLP.to_bytes(trial.model))
    assert not stored.training and MLP.parameter_count(config, hyper, 2) == MLP.parameter_count((16, 8), hyper, 2)
