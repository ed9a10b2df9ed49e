"""The refinement service: successive halving out of the database, on a GPU when there is one.

Run it with ``scripts/start_refinement_service.sh`` or::

    python -m trails.refinement.service [--config config.ini] [--host 127.0.0.1] [--port 8093]

Defaults come from ``[service]`` of ``config.ini``: ``host`` (127.0.0.1: reachable from this
machine only; any other address needs a token, or the service refuses to start), ``port``,
``token`` (empty: no authentication; otherwise every endpoint but ``/healthz`` needs
``Authorization: Bearer <token>``; ``$TRAILS_SERVICE_TOKEN`` wins over the file), ``dsn``
(host, port, user; empty: libpq's ``PGHOST``/``PGPORT``/``PGUSER``...), ``cache_mb``,
``max_table_mb``, ``max_jobs``, and where candidates train: ``executor`` (``local``: in this
process; ``ray``: on Ray workers, see :mod:`trails.refinement.ray_executor`), ``ray_address``,
``ray_workers``, ``ray_cpus_per_worker``.

**The caller's settings and data, exactly.** A job from ``model_selection`` names its ``database``, the
calling ``role`` and the schema-qualified tables (with their OIDs) the backend resolved in
the caller's session; the service connects to that database and reads exactly those tables,
after checking that each OID still names that table there and that the role may SELECT from it
— or fails the job saying why. When the service's own role may (a member of the caller's role,
or a superuser), it then reads as the caller (``SET LOCAL ROLE``): PostgreSQL applies the
caller's privileges and row-level security policies to the rows read. (A job without ``tables`` — the API used directly — resolves
``dataset`` by name in the DSN's database.)

API (JSON; every error is ``{"error": "<message>", ...}``):

* ``POST /v1/jobs`` — a :class:`~trails.refinement.jobs.JobSpec` as JSON: ``{dataset, label,
  layout_id, candidates: ["8-16-32-64", ...], u, eta, max_epochs, deadline_s, seed, settings:
  {batch_size, iter_per_epoch, learning_rate, embedding_dim, batch_norm, eval_batch_size,
  precision, decision_valid_rows}}`` plus optional ``metric`` (the layout's task's default when
  absent) and ``finish`` → 202 ``{job_id, status}``; 422 for a bad payload, or for settings
  this service cannot honour (``precision = bf16`` on a device without bfloat16): **the job's
  settings are what its candidates train with, all of them; the service's ``[refinement]`` is
  never used**. ``deadline_s`` counts from the submission: queueing and loading rows spend it too.
* ``GET /v1/jobs/{id}`` — ``{job_id, status: queued|loading|running|done|failed|cancelled,
  progress (0..1), message, rungs: [{arch, rung, total_epochs, valid_score (the metric, on the
  decision sample), seconds, ...}], result (when done): {winner, valid_score, metric, valid_rows, decision_score,
  decision_rows, deadline_hit, planned_epochs, trained_epochs, winner_epochs, n_ids, n_fields,
  embedding_dim, batch_norm, training_dtype, ...}, error (when failed):
  {message, hint, detail, type}}``.
* ``GET /v1/jobs/{id}/model`` — the winner's ``state_dict`` (``torch.save`` bytes); 409 until
  the job is done.
* ``DELETE /v1/jobs/{id}`` — cancel; a running job stops within a training iteration.
* ``GET /v1/jobs`` — every job kept, oldest first, with status and progress.
* ``GET /healthz`` — ``{status: "ok", device, torch, cuda, executor ("local": one worker
  thread; "ray": with ``ray_address``), workers, devices (one per worker), jobs: {status: count}}``.

Jobs run one at a time on a worker thread; with ``executor = ray`` each rung of a job trains
its candidates on Ray's workers at once, successive halving still decided here. Each job reads its train and valid splits from
PostgreSQL through psycopg2 (a server-side cursor, chunk by chunk, encoded with the stored
layout ``layout_id``) straight onto the device, and the tensors stay cached per (database, role,
tables, layout) up to ``cache_mb``, so the next job on the same data starts training at once.

**Streaming start** (``[service] stream_train = true``; off by default): the valid split is read
first, then the train split in a background thread while training already runs on the rows read
so far (each epoch uses the rows in when it starts: :mod:`trails.refinement.stream`); a job's
result reports ``training_started_after_s`` and ``train_rows_at_start``. (With ``executor =
ray`` it gains nothing: the data is shipped to the workers once the whole split is read.)

Modules: :mod:`.settings` (``[service]``), :mod:`.api` (the HTTP schema and app), :mod:`.jobs`
(the queue and the worker), :mod:`.access` (what a job may read, read as its caller: the
security-critical code), :mod:`.reading` (rows onto the device, streaming), :mod:`.cache` (the
tensor cache), :mod:`.cli` (the command line).
"""

from trails.refinement.jobs import FINISHED, STATUSES
from trails.refinement.service.api import JobRequest, SettingsRequest, create_app
from trails.refinement.service.cache import TensorCache
from trails.refinement.service.cli import main
from trails.refinement.service.jobs import Job, JobManager
from trails.refinement.service.settings import APPLICATION_NAME, EXECUTORS, LOOPBACK, ServiceSettings

__all__ = ["APPLICATION_NAME", "EXECUTORS", "FINISHED", "LOOPBACK", "STATUSES", "Job", "JobManager", "JobRequest",
           "ServiceSettings", "SettingsRequest", "TensorCache", "create_app", "main"]
