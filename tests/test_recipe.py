"""An MLP candidate's recipe (trails.refinement.recipe, trails.families.mlp_config): its text,
what it changes in training, and that the network it trains is stored, served and resumed as
any other MLP's. No database."""

from __future__ import annotations

import configparser

import pytest
import torch

from trails.errors import TrailsError
from trails.families import MLP, Candidate, ModelHyper, parse_candidate
from trails.families.mlp_config import MlpConfig, arch_and_recipe, mlp_config
from trails.model import ReLUDropout
from trails.refinement.finishing import PLATEAU_FACTOR, Plateau
from trails.refinement.recipe import PLATEAU_PATIENCE, PORTFOLIO, REGULARISED, WIDE, Recipe, task_schedule
from trails.refinement.settings import TrainingSettings
from trails.refinement.trainer import Trial, train
from trails.task import BINARY_01, Task
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


def test_batch_size_scales_the_rate_and_keeps_an_epochs_rows_and_applies_once():
    recipe = Recipe.parse("bs=2048,emb=16,plateau=2")
    assert (recipe.batch_size, recipe.embedding_dim, recipe.plateau) == (2048, 16, 2)
    assert recipe.text == "bs=2048,emb=16,plateau=2" and Recipe.parse(recipe.text) == recipe
    run = TrainingSettings(batch_size=512, iter_per_epoch=200, learning_rate=1e-3)
    applied = recipe.apply(run)
    assert (applied.batch_size, applied.iter_per_epoch, applied.embedding_dim, applied.plateau) == (2048, 50, 16, 2)
    assert applied.learning_rate == pytest.approx(2e-3)  # √(2048 / 512) = 2
    assert recipe.apply(applied) == applied  # refit applies it to the settings the model recorded
    small = Recipe(batch_size=128).apply(run)
    assert (small.iter_per_epoch, small.learning_rate) == (800, pytest.approx(5e-4))
    with pytest.raises(TrailsError, match="batch_size"):
        Recipe(batch_size=0).apply(run)
    with pytest.raises(TrailsError, match="plateau"):
        Recipe(plateau=-1).apply(run)


def test_an_embedding_width_recipe_trains_stores_and_rebuilds_its_own_width():
    config = mlp_config((16, 8), Recipe(embedding_dim=6, batch_size=256))
    trial = MLP.new_trial(config, N_IDS, N_FIELDS, 1000, SETTINGS, seed=1)
    assert trial.model.embedding.weight.shape == (N_IDS, 6) and trial.settings.batch_size == 256
    assert trial.settings.iter_per_epoch == 2  # 5 iterations of 128 rows: about 2 of 256
    train(trial, synthetic(600, 5), 1, trial.settings.batch_size, trial.settings.iter_per_epoch)
    rebuilt = MLP.from_snapshot(config, trial.snapshot(), N_IDS, N_FIELDS, SETTINGS, BINARY_01)
    assert rebuilt.embedding.weight.shape == (N_IDS, 6)
    hyper = ModelHyper(n_ids=N_IDS, n_fields=N_FIELDS, embedding_dim=SETTINGS.embedding_dim, batch_norm=True)
    assert MLP.parameter_count(config, hyper, 2) == sum(p.numel() for p in trial.model.mlp.parameters())


def test_the_plateau_schedule_restores_the_best_weights_and_steps_the_rate_down():
    trial = MLP.new_trial((16, 8), N_IDS, N_FIELDS, 10**6, SETTINGS, seed=2)
    best = trial.snapshot()
    plateau = Plateau(2)
    assert not plateau.after_epoch(trial, True, best)
    with torch.no_grad():
        trial.model.embedding.weight.add_(1.0)  # an epoch that did not help
    assert not plateau.after_epoch(trial, False, best)
    assert plateau.after_epoch(trial, False, best) and plateau.steps == 1
    assert torch.equal(trial.model.embedding.weight, best["embedding.weight"])
    assert trial.learning_rate == pytest.approx(SETTINGS.learning_rate / PLATEAU_FACTOR)
    train(trial, synthetic(600, 5), 1, 128, 5)  # the rate is held after the step
    assert trial.learning_rate == pytest.approx(SETTINGS.learning_rate / PLATEAU_FACTOR)
    assert not Plateau(0).after_epoch(trial, False, best)  # patience 0: never steps


def test_a_plateau_schedule_holds_steps_and_decays_inside_one_training_call():
    # one train() call of 12 epochs, as the finishing phase makes: the loop must follow the
    # schedules the epoch callback puts in place (it once kept stepping the one it started with)
    trial = MLP.new_trial((16, 8), N_IDS, N_FIELDS, 10**12, SETTINGS, seed=0)
    per_epoch, epochs = 5, 12
    plateau = Plateau.over(1, trial.iterations, epochs * per_epoch, per_epoch)
    improvements = [True, False, True, False, True, True, True, True, True, True, True, True]  # steps after 2 and 4
    rates = []

    def on_epoch(trial, loss):
        improved = improvements[len(rates)]
        stepped = plateau.after_epoch(trial, improved, trial.snapshot())
        rates.append((trial.learning_rate, stepped, plateau.annealing))

    train(trial, synthetic(3000, 1), epochs, 128, per_epoch, on_epoch=on_epoch)
    held = [rate for rate, _, annealing in rates if not annealing]
    assert held == pytest.approx([1e-2, 1e-3, 1e-3, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4])  # held between steps
    assert [stepped for _, stepped, _ in rates][:4] == [False, True, False, True] and plateau.steps == 2
    decay = [rate for rate, _, annealing in rates if annealing]  # from the boundary before the last quarter
    assert len(decay) == 4 and decay == sorted(decay, reverse=True) and decay[0] == pytest.approx(1e-4) and decay[-1] < 1e-6


def test_the_task_chooses_the_finishing_schedule_unless_the_configuration_does(tmp_path):
    auto = TrainingSettings()
    assert auto.plateau is None  # [refinement] plateau = auto
    assert task_schedule(auto, BINARY_01).plateau == PLATEAU_PATIENCE
    assert task_schedule(auto, Task("regression")).plateau == 0
    assert task_schedule(TrainingSettings(plateau=0), BINARY_01).plateau == 0  # configured: kept
    assert TrainingSettings.from_json(auto.to_json()) == auto
    config = configparser.ConfigParser()
    config.read_string("[refinement]\nbatch_size = 512\niter_per_epoch = 200\nlearning_rate = 0.001\n"
                       "embedding_dim = 10\nbatch_norm = true\nplateau = 2\n")
    assert TrainingSettings.from_config(config).plateau == 2
    config.set("refinement", "plateau", "auto")
    assert TrainingSettings.from_config(config).plateau is None
    config.set("refinement", "plateau", "soon")
    with pytest.raises(TrailsError, match="plateau") as error:
        TrainingSettings.from_config(config)
    assert "auto" in error.value.hint


def test_the_cosine_runs_untouched_and_a_short_plateau_phase_still_ends_annealed():
    trial = MLP.new_trial((16, 8), N_IDS, N_FIELDS, 10**6, SETTINGS, seed=2)
    trial.anneal(100)
    cosine = Plateau.over(0, trial.iterations, 100, 10)  # patience 0: the phase's own cosine
    assert cosine.anneal_from is None
    schedule = trial.scheduler
    assert not cosine.after_epoch(trial, False, trial.snapshot()) and trial.scheduler is schedule
    # two epochs in all: the decay starts at the first boundary, not after the last
    short = Plateau.over(1, 0, 20, 10)
    trial.iterations = 10
    short.after_epoch(trial, True, trial.snapshot())
    assert short.annealing


def test_a_held_rate_survives_export_and_a_recipe_that_changes_nothing_does_not_race():
    trial = MLP.new_trial((16, 8), N_IDS, N_FIELDS, 10**6, SETTINGS, seed=2)
    trial.step_down(0.1)
    rebuilt = MLP.trial_from_state(trial.export_state(), N_IDS, N_FIELDS, SETTINGS)
    train(rebuilt, synthetic(600, 5), 1, 128, 5)
    assert rebuilt.learning_rate == pytest.approx(SETTINGS.learning_rate * 0.1)
    wide = TrainingSettings(embedding_dim=16)
    assert not WIDE.applies(wide) and WIDE.applies(TrainingSettings())
    assert not Recipe(batch_size=512).applies(TrainingSettings()) and Recipe(batch_size=512, dropout=0.1).applies(
        TrainingSettings())
    big = Recipe(batch_size=1_000_000)
    assert big.text == "bs=1000000" and Recipe.parse(big.text) == big
