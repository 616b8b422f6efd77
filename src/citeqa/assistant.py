"""The question-answering chain: condense → retrieve → score evidence → compose → verify → Answer.

Each stage is a LangChain runnable over a state dict, so the chain can be inspected, traced or
extended like any LangChain pipeline; the default path uses no LLM.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from citeqa.answer import compose as comp
from citeqa.answer import evidence as ev
from citeqa.config import Settings
from citeqa.errors import LLMError, QuestionError
from citeqa.index import Index
from citeqa.retrieve import HybridRetriever
from citeqa.textutil import STOPWORDS
from citeqa.types import Answer, AnswerSentence, Citation
from citeqa.verify import verify_answer

MAX_QUESTION_CHARS = 2000
History = Sequence[tuple[str, str]]

_FOLLOW_UP = re.compile(
    r"^\s*(and|also|what about|how about|what of|same for|and what|and how|then|or)\b|"
    r"\b(they|them|those|these|it|its|that one|this one|the one|that|each of them)\b", re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_question(question: str) -> str:
    if not isinstance(question, str):
        raise QuestionError("The question must be text.")
    q = _CONTROL.sub(" ", unicodedata.normalize("NFC", question))
    q = " ".join(q.split())
    if not q:
        raise QuestionError("Please type a question.")
    if len(q) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"The question is {len(q):,} characters long; the limit is {MAX_QUESTION_CHARS:,}. "
            "Ask the question itself, without pasting documents into it (add documents to the library instead)."
        )
    if not re.search(r"\w", q):
        raise QuestionError("The question has no words in it; please type a question.")
    return q


def looks_english(q: str) -> bool:
    words = re.findall(r"[^\W\d_]+", q.lower())
    if len(words) < 4:
        return all(w.isascii() for w in words)
    ascii_share = sum(w.isascii() for w in words) / len(words)
    stop_share = sum(w in STOPWORDS for w in words) / len(words)
    return ascii_share > 0.8 and stop_share > 0.12


def is_follow_up(question: str, history: History) -> bool:
    if not history:
        return False
    return bool(_FOLLOW_UP.search(question)) or len(question.split()) <= 5


class Assistant:
    """``Assistant(index).ask(question, history) -> Answer``; ``stream`` yields text deltas then the Answer."""

    def __init__(self, index: Index, settings: Settings | None = None) -> None:
        self.index = index
        self.settings = settings or index.settings
        self.retriever = HybridRetriever(index=index, settings=self.settings, k=self.settings.top_k)
        self.chain: Runnable[dict[str, Any], dict[str, Any]] = (
            RunnableLambda(self._condense).with_config(run_name="condense")
            | RunnableLambda(self._retrieve).with_config(run_name="retrieve")
            | RunnableLambda(self._score).with_config(run_name="score")
            | RunnableLambda(self._compose).with_config(run_name="compose")
        )
        self._llm: Any = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Assistant:
        settings = settings or Settings()
        return cls(Index.open(settings), settings)

    # --- public API -----------------------------------------------------------------------------
    def ask(self, question: str, history: History = ()) -> Answer:
        t0 = time.perf_counter()
        state = self.chain.invoke({"question": question, "history": list(history), "timings": {}, "t0": t0})
        if self.settings.answer_mode != "extractive" and not state["refused"]:
            state = self._with_llm(state)
        return self._finish(state)

    def stream(self, question: str, history: History = ()) -> Iterator[str | Answer]:
        """Yield answer text as it is produced, then the final, verified ``Answer``."""
        t0 = time.perf_counter()
        state = self.chain.invoke({"question": question, "history": list(history), "timings": {}, "t0": t0})
        if self.settings.answer_mode != "extractive" and not state["refused"]:
            parts: list[str] = []
            try:
                for delta in self._llm_answerer().stream(*self._llm_inputs(state)):
                    parts.append(delta)
                    yield delta
                state = self._verify_llm(state, "".join(parts))
            except LLMError as e:
                state["notices"].append(f"The LLM failed ({e}); showing the evidence-based answer.")
                yield "\n\n"
                yield from re.findall(r"\S+\s*", state["text"])
        else:
            yield from re.findall(r"\S+\s*", state["text"])
        yield self._finish(state)

    # --- chain stages -----------------------------------------------------------------------------
    def _condense(self, st: dict[str, Any]) -> dict[str, Any]:
        t = time.perf_counter()
        q = clean_question(st["question"])
        history = [(clean_question(u) if u.strip() else "", a) for u, a in st["history"] if isinstance(u, str)]
        notices: list[str] = []
        if not looks_english(q):
            notices.append("citeqa's models and sources are English; a question in another language may "
                           "find nothing. Try asking in English.")
        context = ""
        if is_follow_up(q, history):
            context = next((u for u, _ in reversed(history) if u), "")
        st.update(question=q, context=context, notices=notices,
                  standalone=f"{q} (following up on: {context})" if context else q)
        st["timings"]["condense"] = (time.perf_counter() - t) * 1000
        return st

    def _retrieve(self, st: dict[str, Any]) -> dict[str, Any]:
        t = time.perf_counter()
        query = f"{st['question']} {st['context']}".strip()
        qv = self.retriever.embed_query(query)
        q_only = self.retriever.embed_query(st["question"]) if st["context"] else qv
        # Evidence is scored over a wider pool than the passages shown: a table row ranked 12th may
        # still be the exact answer.
        shown = self.retriever.passages(query, self.settings.top_k, qvec=qv)
        ids = {p.unit.id for p in shown}
        wider = self.retriever.passages(query, max(self.settings.evidence_pool, self.settings.top_k), qvec=qv)
        st["passages"] = shown
        st["pool"] = shown + [p for p in wider if p.unit.id not in ids]
        st["qvec"] = (q_only + 0.5 * qv) / 1.5 if st["context"] else qv
        st["timings"]["retrieve"] = (time.perf_counter() - t) * 1000
        return st

    def _score(self, st: dict[str, Any]) -> dict[str, Any]:
        t = time.perf_counter()
        q = ev.make_query(self.index, st["question"], st["context"], st["qvec"])
        scored = ev.score(self.index, q, ev.candidates(self.index, st["pool"]))
        mentioned = self.index.mentioned_docs(f"{st['question']} {st['context']}")
        picked = ev.select(q, scored, self.settings.max_evidence, mentioned)
        st.update(query=q, scored=scored, picked=picked, support=ev.support(q, picked, mentioned))
        st["timings"]["score"] = (time.perf_counter() - t) * 1000
        return st

    def _compose(self, st: dict[str, Any]) -> dict[str, Any]:
        t = time.perf_counter()
        refused = st["support"] < self.settings.refusal_threshold or not st["picked"]
        st["refused"] = refused
        st["conflicts"] = []
        if refused:
            st["text"], st["citations"], st["sentences"] = self._refusal(st)
        else:
            picked = list(st["picked"])
            found = comp.conflicts(self.index, picked, st["scored"])
            for a, b, _ in found:
                for s in (a, b):
                    if s not in picked:
                        picked.append(s)
            text, cits, sents = comp.compose(self.index, picked)
            if found:
                notes = []
                for a, b, what in found:
                    na = next(c.n for c in cits if (c.doc, c.start) == (a.cand.unit.doc, a.cand.sentence.start))
                    nb = next(c.n for c in cits if (c.doc, c.start) == (b.cand.unit.doc, b.cand.sentence.start))
                    ta, tb = self.index.meta(a.cand.unit.doc).title, self.index.meta(b.cand.unit.doc).title
                    notes.append(f"The sources differ on the number of {what}s: \"{ta}\" [{na}] and \"{tb}\" [{nb}] "
                                 "give different figures.")
                st["conflicts"] = notes
                text = f"{text} {' '.join(notes)}"
                sents = [*sents, *(AnswerSentence(n, (), True, "conflict") for n in notes)]
            st["text"], st["citations"], st["sentences"] = text, cits, sents
            # The extractive answer quotes its sources, so verification is a self-check that must pass.
            st["verified"] = verify_answer(text, {c.n: c.text for c in cits})
        st["timings"]["compose"] = (time.perf_counter() - t) * 1000
        return st

    def _refusal(self, st: dict[str, Any]) -> tuple[str, list[Citation], list[AnswerSentence]]:
        draft = comp.Draft(self.index, [])
        shown = []
        seen_units = set()
        for s in st["scored"]:
            if s.cand.unit.id in seen_units:
                continue
            seen_units.add(s.cand.unit.id)
            n = draft.cite(s.cand.unit.doc, s.cand.unit, s.cand.sentence, s.score,
                           comp.row_cells_text(s.cand.unit) if s.cand.is_row else s.cand.sentence.text)
            shown.append(n)
            if len(shown) == 3:
                break
        topic = st["question"].rstrip("?. ")
        lead = f"The indexed sources do not report this (asked: \"{topic}\")."
        near = f" Nearest passages: {', '.join(f'[{n}]' for n in shown)}." if shown else ""
        return lead + near, draft.citations, [AnswerSentence(lead, (), True, "refusal")]

    # --- LLM path ---------------------------------------------------------------------------------
    def _llm_answerer(self) -> Any:
        if self._llm is None:
            from citeqa.answer.llm import LLMAnswerer

            self._llm = LLMAnswerer(self.settings)
        return self._llm

    def _llm_inputs(self, st: dict[str, Any]) -> tuple[str, list[tuple[str, str]], list[tuple[int, str, str]]]:
        pool = st["scored"][:8]
        st["llm_pool"] = pool
        numbered = []
        for i, s in enumerate(pool, 1):
            u = s.cand.unit
            header = f"{self.index.meta(u.doc).title} — {u.section}"
            numbered.append((i, header, comp.sentence_text(self.index, s)))
        return st["question"], st["history"], numbered

    def _with_llm(self, st: dict[str, Any]) -> dict[str, Any]:
        t = time.perf_counter()
        try:
            raw = self._llm_answerer().answer(*self._llm_inputs(st))
            st = self._verify_llm(st, raw)
        except LLMError as e:
            st["notices"].append(f"The LLM failed ({e}); showing the evidence-based answer.")
        st["timings"]["llm"] = (time.perf_counter() - t) * 1000
        return st

    def _verify_llm(self, st: dict[str, Any], raw: str) -> dict[str, Any]:
        pool = st["llm_pool"]
        sources = {i: comp.sentence_text(self.index, s) for i, s in enumerate(pool, 1)}
        v = verify_answer(raw, sources)
        if not v.sentences or not any(s.supported and s.citations for s in v.sentences):
            st["notices"].append("The LLM's answer could not be verified against the sources; "
                                 "showing the evidence-based answer instead.")
            return st
        # Renumber the LLM's markers onto exact citations in order of use.
        draft = comp.Draft(self.index, [])
        mapping = {}
        for i in v.used:
            s = pool[i - 1]
            mapping[i] = draft.cite(s.cand.unit.doc, s.cand.unit, s.cand.sentence, s.score, sources[i])
        text = re.sub(r"\[(\d+(?:\s*,\s*\d+)*)\]",
                      lambda m: "[" + ", ".join(str(mapping.get(int(x), x)) for x in m.group(1).split(",")) + "]",
                      v.text)
        sents = [AnswerSentence(s.text, tuple(mapping.get(n, n) for n in s.citations), s.supported, s.note)
                 for s in v.sentences]
        if any(not s.supported for s in sents):
            st["notices"].append("Some sentences of the LLM's answer are not supported by the cited passages; "
                                 "they are marked as unsupported.")
        st.update(text=text, citations=draft.citations, sentences=sents, mode=self.settings.answer_mode)
        return st

    # --- result -------------------------------------------------------------------------------------
    def _finish(self, st: dict[str, Any]) -> Answer:
        st["timings"]["total"] = (time.perf_counter() - st["t0"]) * 1000
        return Answer(
            question=st["question"],
            text=st["text"],
            citations=st["citations"],
            passages=[p.to_dict() for p in st["passages"]],
            refused=st["refused"],
            sentences=tuple(st["sentences"]),
            conflicts=tuple(st["conflicts"]),
            notices=tuple(st["notices"]),
            standalone_question=st["standalone"],
            mode=st.get("mode", "extractive"),
            support=st["support"],
            timings_ms=dict(st["timings"]),
        )
