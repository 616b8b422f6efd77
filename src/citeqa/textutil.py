"""Tokenisation shared by BM25, evidence scoring and verification (one definition of a 'term')."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my no nor
    not now of off on once only or other our out over own same she should so some such than that the
    their them then there these they this those through to too under until up very was we were what when
    where which while who whom why will with would you your yours per vs versus among within whether did
    was were many much tell show give report reported""".split()
)
QUESTION_WORDS = frozenset(
    """what which who whom whose when where why how many much did does do was were is are""".split()
)

_STOP_STEMS: frozenset[str] = frozenset()  # filled below, once the stemmer is defined
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*%?|[^\W\d_]+(?:[-'][^\W\d_]+)*|[≥≤<>±]", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.])[-−–]?\d+(?:[.,]\d+)*(?![\w])")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return (
        text.replace("−", "-").replace("–", "-").replace("—", " - ").replace(">=", "≥").replace("<=", "≤")
        .replace("µ", "μ")
    )


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import Stemmer  # PyStemmer

        return Stemmer.Stemmer("english").stemWord
    except ImportError:  # light fallback keeps the product working without the C extension
        def light(w: str) -> str:
            for suf in ("ations", "ation", "ments", "ment", "ingly", "ing", "edly", "ed", "ies", "es", "s"):
                if len(w) > len(suf) + 3 and w.endswith(suf):
                    return w[: -len(suf)]
            return w

        return light


# British spellings read as American ones, so "randomised" meets "randomized" and "tumour" "tumor": questions
# and documents often spell differently. Words that end in -ise in both spellings keep it.
_ISE_KEEP = frozenset("""rise arise wise otherwise likewise clockwise precise concise excise incise circumcise exercise
    advise devise revise supervise televise improvise surprise comprise enterprise reprise apprise promise premise
    compromise demise expertise merchandise franchise paradise treatise anise raise praise bruise cruise chemise
    mortise valise porpoise tortoise turquoise practise despise disguise noise poise""".split())
_ISE = re.compile(r"^([a-z-]{2,}?)is(e|es|ed|ing|er|ers|ation|ations|ational|able)$")
_OUR = re.compile(r"^([a-z-]{3,})our(s|ed|ing|able|ably|ite|ites|al|ally|less|ful)?$")
_BRITISH = tuple((re.compile(p), r) for p, r in (
    (r"haem", "hem"), (r"aemi", "emi"), (r"anaesth", "anesth"), (r"paed", "ped"), (r"aetiol", "etiol"),
    (r"faec", "fec"), (r"gynaec", "gynec"), (r"caesar", "cesar"), (r"oesoph", "esoph"), (r"^oestr", "estr"),
    (r"oedem", "edem"), (r"^foet", "fet"), (r"rrhoe", "rrhe"), (r"coeliac", "celiac"), (r"leucocyt", "leukocyt"),
    (r"sulph", "sulf"), (r"programme", "program"), (r"ageing", "aging"), (r"^(de|of)fence", r"\1fense"),
    (r"^licence", "license"), (r"^([a-z-]{2,})([tb])re(s)?$", r"\1\2er\3"),
    (r"^([a-z-]{2,})([tb])red$", r"\1\2ered"),
    (r"^([a-z-]{3,})logue(s)?$", r"\1log\2"), (r"^([a-z-]{2,})ys(e|ed|ing|er|ers)$", r"\1yz\2"),
))


def american(word: str) -> str:
    """``word`` (lower case) in American spelling: "randomised" -> "randomized", "haemoglobin" -> "hemoglobin"."""
    if len(word) < 5:
        return word
    m = _ISE.match(word)
    if m and (m.group(1) + "ise").rsplit("-", 1)[-1] not in _ISE_KEEP:
        word = f"{m.group(1)}iz{m.group(2)}"
    m = _OUR.match(word)
    if m:
        word = f"{m.group(1)}or{m.group(2) or ''}"
    for pat, rep in _BRITISH:
        word = pat.sub(rep, word)
    return word


# Derived nouns read as their verb or adjective, which Porter's stemmer leaves apart: "treatment" meets
# "treated", "admission" "admitted", "recovery" "recover", "dosage" "dose", "stability" "stable",
# "conclusion" "concluded". Rules on stems; a stem must keep five letters ("basement" stays). Checked over
# the corpora's vocabulary: each merge joins one word family.
_DERIVED = tuple((re.compile(p), r) for p, r in (
    (r"^([a-z-]{5,})ment$", r"\1"), (r"(?<=[a-z]{2})miss$", "mit"), (r"script$", "scrib"),
    (r"clus$", "clud"), (r"(?<=[a-z])abil$", "abl"), (r"(ov|iv)eri$", r"\1"), (r"sag$", "se"),
    (r"^([a-z-]{5,})ag$", r"\1"),
))


# Greek letters read as their names, so a question typed "beta-estradiol" or "IL-1beta" meets a text's
# "β-estradiol" and "IL-1β" (and the other way round). Mu is left alone: "μ" is the micro of "μg" and "μM".
_GREEK = str.maketrans({"α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta",
                        "η": "eta", "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "ν": "nu", "ξ": "xi",
                        "π": "pi", "ρ": "rho", "σ": "sigma", "ς": "sigma", "τ": "tau", "φ": "phi", "χ": "chi",
                        "ψ": "psi", "ω": "omega"})


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    s: str = _stemmer()(american(word.translate(_GREEK)))
    # Porter gives "stratifi" for "stratified" but "stratif" for "stratification" (also classify,
    # modify, identify, quantify...): join the two.
    s = s[:-1] if s.endswith("ifi") else s
    for pat, rep in _DERIVED:
        d = pat.sub(rep, s)
        if d != s:
            return d
    return s


def tokens(text: str, parts: bool = False) -> list[str]:
    """Lower-cased, stemmed word tokens plus numbers kept whole ("37.8", "50,000", "90%").

    With ``parts``, hyphenated words also yield their parts, so "stem-cell" meets "stem cell" (retrieval).
    """
    out = []
    for t in _TOKEN.findall(normalise(text).lower()):
        if t[0].isdigit():
            out.append(t.rstrip("%").replace(",", ""))
        elif len(t) == 1 and t in "≥≤<>±":
            out.append(t)
        else:
            out.append(stem(t))
            if parts and "-" in t:
                out.extend(stem(p) for p in t.split("-") if len(p) > 1)
    return out


def index_terms(text: str, parts: bool = False) -> list[str]:
    """BM25 terms: stemmed tokens without stopwords (numbers kept whole)."""
    return [t for t in tokens(text, parts) if t not in _STOP_STEMS]


def content_terms(text: str) -> list[str]:
    """Tokens that carry meaning: no stopwords, no question words."""
    out = []
    for t in _TOKEN.findall(normalise(text).lower()):
        if t in STOPWORDS or t in QUESTION_WORDS or (len(t) == 1 and not t.isdigit()):
            continue
        out.append(t.rstrip("%").replace(",", "") if t[0].isdigit() else stem(t))
    return out


def numbers(text: str) -> list[str]:
    """Numbers as written (thousands separators dropped, unicode minus normalised)."""
    return [m.replace(",", "").replace("−", "-").replace("–", "-") for m in _NUMBER.findall(normalise(text))]


_STOP_STEMS = frozenset(stem(w) for w in STOPWORDS | QUESTION_WORDS) | STOPWORDS | QUESTION_WORDS


def _quote_pattern(quote: str) -> re.Pattern[str] | None:
    """The quote's words with any run of whitespace between them; None for a blank quote."""
    words = quote.split()
    return re.compile(r"\s+".join(re.escape(w) for w in words)) if words else None


def find_quote(text: str, quote: str) -> tuple[int, int] | None:
    """Where ``quote`` stands in ``text``: verbatim, else with any run of whitespace for each space (a
    table written with tabs where the quote has spaces, a line break where it has one space)."""
    pos = text.find(quote)
    if pos >= 0:
        return pos, pos + len(quote)
    pat = _quote_pattern(quote)
    m = pat.search(text) if pat else None
    return (m.start(), m.end()) if m else None


def find_quotes(text: str, quote: str) -> list[tuple[int, int]]:
    """Every place ``quote`` stands in ``text``, matched as :func:`find_quote` does: a gold quote given
    without offsets is met wherever the document states it word for word (an abstract's sentence repeated
    in the results)."""
    pat = _quote_pattern(quote)
    return [(m.start(), m.end()) for m in pat.finditer(text)] if pat else []
