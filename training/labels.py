"""Feedback as relevance labels: an accepted correction that names the right source says which section answers
its question, and search ranks that section higher for questions like it (retrieval/store.py, migration 0010).

Which source a correction names follows the pairs' rules (`training.pairs.as_written`: its own citations, the
source picked in the form, a link, quote or name of a source, or the source its words match); one that names none
gives no label. The labels are rebuilt from the feedback standing now, so retracted, rejected and purged
corrections drop out at the next refresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from core.answer_log import AnswerLog, Corrected
from core.prompt import cited_numbers
from retrieval.index import WikiIndex
from retrieval.models import RelevanceLabel
from training.pairs import as_written


@dataclass(frozen=True)
class LabelRefresh:
    corrections: int  # accepted corrections read
    labels: int  # labels search uses now


def relevance_labels(corrected: Iterable[Corrected]) -> Iterator[RelevanceLabel]:
    """A label for each source a correction names, of those the corrected answer had."""
    for item in corrected:
        by_number = {int(s["n"]): s for s in item.sources}
        text, rule = as_written(item.correction, item.sources)
        if rule == "uncited":
            continue
        for n in cited_numbers(text):
            source = by_number.get(n, {})
            if source.get("page_id") is not None and source.get("url"):
                yield RelevanceLabel(item.correction.feedback_id, item.question, int(source["page_id"]), source["url"])


async def refresh_labels(index: WikiIndex) -> LabelRefresh:
    """Rebuild the labels search uses from the accepted corrections standing now; only questions not labelled
    before are embedded, and labels that did not change are left as they are."""
    await index.store.check_embedding_model(index.embedder.model_name)  # questions are embedded as the index is
    corrected = await AnswerLog(index.db).accepted_corrections()
    labels = list(relevance_labels(corrected))
    current = await index.store.labels()
    if set(labels) == current.keys():
        return LabelRefresh(len(corrected), len(current))
    vectors = {label.question: vector for label, vector in current.items()}
    new = [q for q in dict.fromkeys(label.question for label in labels) if q not in vectors]
    vectors |= zip(new, await asyncio.to_thread(index.embedder.embed_documents, new), strict=True)
    kept = await index.store.replace_labels(labels, [vectors[label.question] for label in labels])
    return LabelRefresh(len(corrected), kept)
