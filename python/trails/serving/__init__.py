"""Scoring rows with a stored model, without torch: what ``trails.predict*`` and
``trails.predict_table`` run in a backend.

* :mod:`.stored` reads a ``trails.models`` row (layout, task, family, weights);
* :mod:`.tree_format` is the stored trees model's format and its feature matrix (the gbdt
  family trains with the same code);
* :mod:`.torch_weights` reads a ``torch.save``'d ``state_dict`` into numpy arrays without torch;
* :mod:`.mlp_forward` and :mod:`.trees_forward` predict one row or many from those;
  :mod:`.tree_masks` rebuilds a trees model as bit masks over its leaves (what
  :mod:`.trees_forward` uses once a backend has scored enough rows);
* :mod:`.piecewise_forward` is a numeric field's piecewise-linear embedding in numpy;
* :mod:`.row_encoder` turns one row (a dict from ``to_json``) into a model's ids and values;
* :mod:`.scorer` puts them together, cached per backend and model.

Nothing here imports torch or :mod:`trails.families`: the first row of a new backend pays
for numpy and LightGBM only.
"""
