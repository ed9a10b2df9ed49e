"""Every NOTICE of a ``model_selection`` call: the user-facing progress protocol, in one place.

A :class:`Reporter` turns what the phases return into the lines the user reads in psql; no
phase formats a NOTICE itself.
"""

from __future__ import annotations

from collections.abc import Callable

from trails.coordinator import Plan
from trails.space import arch_text

NoticeFn = Callable[[str], None]


def rung_notice(rung: dict, metric: str) -> str:
    """The NOTICE for one evaluation (a :class:`~trails.refinement.halving.RungResult` as JSON)."""
    what = "final training" if rung.get("final") else f"refinement rung {rung['rung']}"
    return (f"{what}: {rung['arch']} after {rung['total_epochs']} epochs: valid {metric} "
            f"{rung['valid_score']:.4f}")


def filtering_progress(what: str, done: int, total: int, seconds: float) -> str:
    """The NOTICE of filtering's progress: ``done`` of ``total`` archs scored in ``seconds``."""
    rate = done / seconds if seconds > 0 else float("inf")
    return f"{what}: {done}/{total} archs scored ({100 * done // total}%), {rate:,.0f} archs/s"


def _rungs_text(plan: Plan) -> str:
    return ", ".join(f"{r.n_models}x{r.total_epochs}ep" for r in plan.rungs)


def _archs_text(archs) -> str:
    return ", ".join(arch_text(arch) for arch in archs)


class Reporter:
    """The NOTICEs of one call, sent through ``notice``."""

    def __init__(self, notice: NoticeFn):
        self.notice = notice

    def task(self, task, label: str) -> None:
        if task.is_classification:
            self.notice(f"task: {task.kind} ({len(task.classes)} classes) of label \"{label}\", metric {task.metric}")
        else:
            self.notice(f"task: regression of label \"{label}\" (train mean {task.mean:.4g}, std {task.std:.4g}), "
                        f"metric {task.metric}")

    def numeric_encoding(self, asked: str, settings) -> None:
        """Says so when ``numeric_encoding => 'piecewise'`` finds no numeric field to bin."""
        if asked == "piecewise" and not settings.numeric_edges:
            self.notice("numeric_encoding 'piecewise': no numeric field with train quantiles to bin; "
                        "every MLP embeds its fields as usual")

    def no_service(self, base_url: str) -> None:
        self.notice(f"no refinement service at {base_url}: refining inside the database on the CPU")

    def service(self, base_url: str, device: str) -> None:
        self.notice(f"refinement service at {base_url} ({device})")

    def plan(self, plan: Plan, t1: float, t2: float, available_s: float | None) -> None:
        if available_s is None:
            self.notice(f"plan: {plan.k} trials, no time budget: N = {plan.n}, K = {plan.k}, U = {plan.u}, rungs "
                        + _rungs_text(plan))
            return
        self.notice(f"plan: t1 = {1e3 * t1:.3f} ms/arch, t2 = {t2:.2f} s/epoch, {available_s:.1f} s to plan: "
                    f"N = {plan.n}, K = {plan.k}, U = {plan.u}"
                    + (" (filtering only)" if plan.filtering_only else ", rungs " + _rungs_text(plan)))

    def filtering(self, done: int, total: int, seconds: float) -> None:
        self.notice(filtering_progress("filtering", done, total, seconds))

    def filtering_stopped(self, scored: int, n: int) -> None:
        self.notice(f"filtering stopped at its deadline after {scored} of {n} archs")

    def candidates(self, archs: list, epoch_cap_s: float | None, finish_s: float | None, min_epochs: int) -> None:
        if epoch_cap_s is None:
            self.notice(f"candidates: the {len(archs)} best-scored archs: " + _archs_text(archs))
        else:
            self.notice(f"candidates: the {len(archs)} best-scored archs costing at most {epoch_cap_s:.2f} s/epoch "
                        f"({min_epochs} epochs in {finish_s:.1f} s of final training): " + _archs_text(archs))

    def revision(self, revision, in_trials: bool, max_trials: int | None, max_params: int | None) -> None:
        """The re-plan's NOTICE (budgeted in seconds, candidates timed), or, in trials, the one
        saying filtering found fewer archs than ``max_trials``."""
        found = len(revision.candidates.archs)
        if in_trials and found < max_trials:
            self.notice(f"filtering found {found} archs within max_params = {max_params}: "
                        f"{found} trials instead of {max_trials}")
        if revision.epoch_s is None:
            return
        plan, previous = revision.plan, revision.previous
        self.notice(f"re-plan: the candidates train at {revision.epoch_s:.2f} s/epoch + {revision.evaluation_s:.2f} s "
                    f"per evaluation; {revision.seconds_left:.1f} s left, {revision.halving_s:.1f} s for successive "
                    f"halving: K = {plan.k}, U = {plan.u}"
                    + (f" (was K = {previous.k}, U = {previous.u})" if (plan.k, plan.u) != (previous.k, previous.u)
                       else "") + "; the winner trains on to the deadline")

    def job_submitted(self, job_id: str, n_candidates: int, u: int) -> None:
        self.notice(f"refinement job {job_id} submitted: {n_candidates} candidates, U = {u}")

    def rung(self, rung: dict, metric: str) -> None:
        self.notice(rung_notice(rung, metric))

    def service_failed(self, message: str, seconds_left: float | None) -> None:
        left = "" if seconds_left is None else f" with the {seconds_left:.1f} s left"
        self.notice(f"the refinement service failed ({message}): refining inside the database{left}")

    def race(self, race) -> None:
        """Who races (a :class:`~trails.selection.entrants.Race`): the families' candidates
        and, with trees, what a unit of theirs is."""
        counts = {}
        for candidate in race.candidates:
            counts[candidate.family] = counts.get(candidate.family, 0) + 1
        entrants = " and ".join(f"{n} {family}" for family, n in counts.items())
        unit = ""
        if race.round_s is not None:
            unit = (f"; a gbdt unit is {race.settings.rounds_per_unit} boosting rounds ({1e3 * race.round_s:.1f} ms "
                    f"each" + (f", about one MLP epoch of {race.unit_s:.2f} s" if race.unit_s else "") + ")")
        reserves = (f"; {len(race.reserves)} more gbdt configurations in reserve, for the time a finished winner "
                    f"leaves" if race.reserves else "")
        self.notice(f"race: {entrants} candidates, K = {race.plan.k}, U = {race.plan.u}{unit}{reserves}")
        for config, need in race.skipped:
            self.notice(f"gbdt:{config.text} left out: its booster would need about {need / 2**20:.0f} MiB for this "
                        f"table, more than half the memory free")

    def warm_layout(self, record, layout_id: int) -> None:
        """How the layout continued the previous model's (a :class:`~trails.selection.warm.WarmRecord`)."""
        whose = f"model {record.model_id}" + (" (deployed)" if record.deployed else "")
        if record.layout == "same":
            self.notice(f"warm start from {whose}: its layout {layout_id}, the train split has not grown")
        elif record.layout == "extended":
            self.notice(f"warm start from {whose}: layout {layout_id} extends its layout, old ids kept, "
                        f"{record.added_values} new values got new ids")

    def warm_scores(self, reused: int, computed: int) -> None:
        self.notice(f"warm start: {reused} TFMEM scores reused from trails.tfmem_scores, {computed} computed")

    def warm_resumed(self, start, fresh: int) -> None:
        """A :class:`~trails.families.stored_start.StoredStart` joined the race."""
        self.notice(f"warm start: {start.candidate.text} resumes from model {start.model_id}'s weights beside "
                    f"{fresh} fresh candidates")

    def cold(self, reason: str) -> None:
        self.notice(f"cold start: {reason}")

    def deployment(self, model_id: int, dataset: str, decision) -> None:
        """Whether model ``model_id`` is now ``dataset``'s deployed one, and why (a
        :class:`~trails.selection.deployment.Decision`)."""
        verdict = "deployed" if decision.deployed else "stored, not deployed"
        self.notice(f"model {model_id} {verdict} for {dataset}: {decision.reason}")

    def winner(self, refined, params: int, metric: str, test_score: float) -> None:
        """The winner (a :class:`~trails.selection.refiners.Refined`) and each family's best
        valid score on the decision sample."""
        best = refined.summary.get("best_by_family") or {}
        per_family = "; best valid per family: " + ", ".join(
            f"{family} {score:.4f}" for family, score in best.items()) if len(best) > 1 else ""
        size = "nodes" if refined.winner.family == "gbdt" else "parameters"
        self.notice(f"winner {refined.winner.text} ({refined.winner.family}, {params} {size}): valid {metric} "
                    f"{refined.valid_score:.4f}, test {metric} {test_score:.4f}{per_family}")
