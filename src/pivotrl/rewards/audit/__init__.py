"""``pivotrl reward audit``: does a composed reward separate right from wrong, and can it be hacked?

Given labelled responses (an eval run's generations, or real human text known to be correct) and their
English pivot references, the audit reports, per language and per reward component:

* **separation** - ROC-AUC of every component score (and of the total) for correct vs incorrect answers,
  and the mean score of each class;
* **hacking probes** - for every honest correct answer, cheap imitations built from the references
  themselves (:data:`PROBES`): the English reference copied, the honest answer with its final number
  changed, its reasoning cut in half, padded by repetition, the honest answer to another problem, the bare
  answer sentence, the native reasoning with an English answer sentence. For each probe: the share of
  cases where the honest answer's total is strictly above the probe's (ties and losses are counted
  separately), and the same per component.

The ``min over required probes`` of a language is its weakest win rate over :data:`REQUIRED_PROBES` (the
issue's five: English copy, wrong number, truncated, padded, unrelated); a reward fit for training should
reach >= 99% in every language.

ROC-AUC basis (reported as ``auc_basis``):

* ``labelled``: data that has both classes (an eval run's generations with their ``correct`` field). Only
  sources of a language that have correct *and* incorrect responses count.
* ``wrong_number``: sources with only correct answers (the MGSM exemplars, the synthetic solutions). Their
  negative class is the ``wrong_number`` variant of each correct answer (same text, final number changed),
  so the AUC measures *number sensitivity*: it is ~1 for a component that reads the answer
  (``answer_agreement``) and ~0.5 for one that cannot tell numbers apart (an embedding). It says nothing
  about naturally wrong reasoning; use labelled generations for that.

Case sources: :func:`cases_from_exemplars` (MGSM's human-translated exemplars: real text in 10 languages),
:func:`cases_from_synthetic` (the synthetic set's worked solutions), :func:`cases_from_generations` (an
eval run, with references from :func:`references_from_store` or :func:`references_from_gold`, and the questions
asked from the run folder's ``config.json``: :func:`questions_from_run`). Every text scored for a case, probes
included, is scored with the case's question.

Every probe is a plain function ``probe(case, context) -> str | None`` registered in :data:`PROBES`
(``None``: not applicable to this case, e.g. an English copy of an English answer); adding a probe is
adding one function. :func:`run_audit` scores the honest responses and all probes of a language in one
``reward.score`` call; :func:`write_audit` writes ``audit.md`` (:func:`audit_markdown`), ``audit.json``,
``audit_cases.jsonl`` and ``audit.png``; :func:`audit_main` is what the command line calls.
"""

from pivotrl.rewards.audit.cases import (
    AuditCase,
    cases_from_exemplars,
    cases_from_generations,
    cases_from_synthetic,
    references_from_gold,
    references_from_store,
    strip_label,
)
from pivotrl.rewards.audit.probes import PROBES, REQUIRED_PROBES, ProbeContext, answer_parts
from pivotrl.rewards.audit.report import audit_main, audit_markdown, questions_from_run, write_audit
from pivotrl.rewards.audit.scoring import AuditReport, LangResult, ProbeStat, run_audit

__all__ = [
    "PROBES",
    "REQUIRED_PROBES",
    "AuditCase",
    "AuditReport",
    "LangResult",
    "ProbeContext",
    "ProbeStat",
    "answer_parts",
    "audit_main",
    "audit_markdown",
    "cases_from_exemplars",
    "cases_from_generations",
    "cases_from_synthetic",
    "questions_from_run",
    "references_from_gold",
    "references_from_store",
    "run_audit",
    "strip_label",
    "write_audit",
]
