"""The topic model behind :mod:`.topics`: scikit-learn, from the ``[topics]`` extra, imported lazily.

::

    model = fit(prompts)                   # tf-idf of words and character n-grams → LSA → k-means
    model.assign(["where is my parcel"])   # [3]: the nearest topic; -1 when nothing is known of it
    model.terms[3]                         # ["parcel", "order", "track", …]: its top words
    TopicModel.loads(model.dumps())        # kept in the database as text (arrays, never a pickle)
    model.place(prompts, previous)         # topics, and each prompt's similarity to its previous one

Why this method (``benchmarks/bench_topics.py`` on a labelled set of 16 intents with typos,
context sentences, other languages and chatter): word and character 4-gram tf-idf reduced to
``DIMENSIONS`` by truncated SVD (LSA), then k-means, had the best agreement with the intents of
the candidates (MiniBatchKMeans or k-means on the sparse vectors, NMF, hashing); characters
keep typos and inflections near their word. ``k`` is the best silhouette over ``K_GRID`` (no
more than one topic per ``MIN_TOPIC_PROMPTS`` prompts). A fit reads at most ``FIT_SAMPLE``
prompts spread evenly over all; every prompt is then assigned to its nearest centre.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
from collections.abc import Sequence
from typing import Any

from trubrics_otel.extras import install_command
from trubrics_otel.server.analytics.query import AnalyticsError

EXTRA = install_command("topics")
FIT_SAMPLE = 20_000
K_SEARCH_SAMPLE = 3_000
K_GRID = (2, 3, 4, 6, 8, 12, 16, 20, 24, 30)  # up to 20: purity 0.62, up to 30: 0.70 (10k prompts)
MIN_TOPIC_PROMPTS = 20
DIMENSIONS = 50
CHAR_FEATURES = 10_000
TERMS = 8
CHUNK = 20_000
# a follow-up whose character 4-gram tf-idf cosine with the previous prompt reaches this is a
# rephrase: on the labelled pairs of benchmarks/bench_topics.py, precision 0.993 and recall 0.818
# (0.4: 0.985 and 0.828; 0.6: 0.994 and 0.797); the word-set Jaccard at 0.6 it replaces: 0.99, 0.66
REPHRASE_SIMILARITY = 0.5


class MissingExtra(AnalyticsError):
    """scikit-learn is not installed."""


def require() -> None:
    """Raise :class:`MissingExtra` unless scikit-learn can be imported (without importing it:
    that takes seconds)."""
    try:
        if importlib.util.find_spec("sklearn") is not None:
            return
    except (ImportError, ValueError):
        pass
    raise MissingExtra(f"topics need scikit-learn: {EXTRA}")


def _libraries() -> tuple[Any, Any]:
    try:
        import numpy
        import sklearn.cluster  # noqa: F401
        import sklearn.decomposition  # noqa: F401
        import sklearn.feature_extraction.text  # noqa: F401
        import sklearn.metrics  # noqa: F401
        import sklearn.preprocessing  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(f"topics need scikit-learn: {EXTRA}") from exc
    return numpy, sklearn


def _vectorizers(min_df: int, vocabulary: tuple[Any, Any] = (None, None)) -> tuple[Any, Any]:
    np, sklearn = _libraries()
    text = sklearn.feature_extraction.text
    word = text.TfidfVectorizer(stop_words="english", sublinear_tf=True, min_df=min_df, max_df=0.5,
                                token_pattern=r"(?u)\b[^\W\d_]{2,}\b", dtype=np.float32, vocabulary=vocabulary[0])
    char = text.TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 4), sublinear_tf=True, min_df=min_df,
                                max_df=0.5, max_features=CHAR_FEATURES, dtype=np.float32, vocabulary=vocabulary[1])
    return word, char


class TopicModel:
    """Fitted vectorizers, SVD components and topic centres; ``terms[t]`` are topic ``t``'s words."""

    def __init__(self, word: Any, char: Any, components: Any, centres: Any, terms: list[list[str]]) -> None:
        self.word, self.char, self.components, self.centres, self.terms = word, char, components, centres, terms

    def assign(self, texts: Sequence[str]) -> list[int]:
        """Each text's nearest topic (cosine to the centre), ``-1`` when none of its words or
        4-grams is known or there are no topics."""
        return self.place(texts, [None] * len(texts))[0]

    def place(self, texts: Sequence[str], previous: Sequence[int | str | None]) -> tuple[list[int], list[float]]:
        """Topics (as :meth:`assign`) and, for each text, its similarity to its previous prompt:
        ``previous[i]`` is an index into ``texts``, that prompt's text, or ``None`` (0.0).
        Each distinct text is vectorized once for both (prompts repeat: "hi", a suggested one)."""
        np, sklearn = _libraries()
        topics: list[int] = []
        found: list[float] = []
        for start in range(0, len(texts), CHUNK):
            distinct: dict[str, int] = {}
            codes = [distinct.setdefault(t or "", len(distinct)) for t in texts[start:start + CHUNK]]
            if not len(self.centres):
                topics += [-1] * len(codes)
                found += [0.0] * len(codes)
                continue
            with _one_thread():
                chars = self.char.transform(list(distinct))
                x = sklearn.preprocessing.normalize(_hstack(self.word.transform(list(distinct)), chars))
                z = sklearn.preprocessing.normalize(x @ self.components.T)
                best = np.asarray((z @ self.centres.T).argmax(axis=1)).ravel()
            best[np.diff(x.indptr) == 0] = -1
            topics += best[codes].tolist()
            found += self._similarities(chars[codes], texts, previous[start:start + CHUNK], start)
        return topics, found

    def _similarities(self, chars: Any, texts: Sequence[str], previous: Sequence[int | str | None],
                      start: int) -> list[float]:
        """Cosine of the character 4-gram tf-idf of each text of the chunk and its previous one:
        the chunk's own rows when it is there, else vectorized from its text."""
        pairs = [(i, p) for i, p in enumerate(previous) if p is not None]
        if not pairs:
            return [0.0] * len(previous)
        inside = [isinstance(p, int) and start <= p < start + chars.shape[0] for _, p in pairs]
        others = [p if isinstance(p, str) else texts[p] for (_, p), here in zip(pairs, inside) if not here]
        outside = iter(range(len(others)))
        extra = self.char.transform(others) if others else None
        rows = [chars[p - start] if here else extra[next(outside)] for (_, p), here in zip(pairs, inside)]
        from scipy.sparse import vstack
        scores = chars[[i for i, _ in pairs]].multiply(vstack(rows)).sum(axis=1).A1
        found = [0.0] * len(previous)
        for (i, _), score in zip(pairs, scores):
            found[i] = float(score)
        return found

    def similarities(self, previous: Sequence[str], prompts: Sequence[str]) -> list[float]:
        """Each pair's similarity, as :meth:`place` finds it (for the benchmark)."""
        return self.place([*prompts, *previous], [len(prompts) + i for i in range(len(previous))] +
                          [None] * len(previous))[1][:len(prompts)]

    def dumps(self) -> str:
        np, _ = _libraries()
        buffer = io.BytesIO()
        arrays = {"components": self.components, "centres": self.centres}
        for name, vectorizer in (("word", self.word), ("char", self.char)):
            if len(self.centres):
                vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
                arrays[f"{name}_vocabulary"] = np.array(vocabulary, dtype=str)
                arrays[f"{name}_idf"] = vectorizer.idf_
        np.savez_compressed(buffer, **arrays)
        return json.dumps({"arrays": base64.b64encode(buffer.getvalue()).decode(), "terms": self.terms})

    @classmethod
    def loads(cls, text: str) -> TopicModel:
        np, _ = _libraries()
        stored = json.loads(text)
        arrays = np.load(io.BytesIO(base64.b64decode(stored["arrays"])), allow_pickle=False)
        if not len(arrays["centres"]):
            return cls(None, None, arrays["components"], arrays["centres"], [])
        word, char = _vectorizers(1, (arrays["word_vocabulary"].tolist(), arrays["char_vocabulary"].tolist()))
        word.idf_, char.idf_ = arrays["word_idf"], arrays["char_idf"]
        return cls(word, char, arrays["components"], arrays["centres"], stored["terms"])


def fit(texts: Sequence[str]) -> TopicModel:
    """A model of at most ``FIT_SAMPLE`` of the texts, spread evenly (see the module's docstring)."""
    _libraries()
    with _one_thread():
        return _fit(texts)


def _one_thread() -> Any:
    """One BLAS/OpenMP thread: on these small matrices threads cost more than they give (the
    SVD of 10,000 prompts took 3.9 s with the default threads on a busy 2-core machine, 0.16 s
    with one); restored on exit."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(1)


def _fit(texts: Sequence[str]) -> TopicModel:
    np, sklearn = _libraries()
    step = max(1, len(texts) // FIT_SAMPLE)
    sample = [t or "" for t in texts[::step][:FIT_SAMPLE]]
    word, char = _vectorizers(2 if len(sample) >= 100 else 1)
    try:
        xw = word.fit_transform(sample)
        x = sklearn.preprocessing.normalize(_hstack(xw, char.fit_transform(sample)))
    except ValueError:  # no word at all (an empty vocabulary): no topics
        return TopicModel(None, None, np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), [])
    dimensions = max(1, min(DIMENSIONS, x.shape[1] - 1, x.shape[0] - 1))
    svd = sklearn.decomposition.TruncatedSVD(dimensions, n_iter=3, random_state=0)
    z = sklearn.preprocessing.normalize(svd.fit_transform(x))
    k = _choose_k(z)
    kmeans = sklearn.cluster.KMeans(k, n_init=3, random_state=0).fit(z)
    centres = sklearn.preprocessing.normalize(kmeans.cluster_centers_).astype(np.float32)
    names = word.get_feature_names_out()
    terms = []
    for topic in range(k):
        mean = np.asarray(xw[kmeans.labels_ == topic].mean(axis=0)).ravel()
        terms.append([str(names[i]) for i in np.argsort(-mean, kind="stable")[:TERMS] if mean[i] > 0])
    return TopicModel(word, char, svd.components_.astype(np.float32), centres, terms)


def _hstack(a: Any, b: Any) -> Any:
    from scipy.sparse import hstack
    return hstack([a, b]).tocsr()


def _choose_k(z: Any) -> int:
    """The best silhouette over ``K_GRID`` on a sample (one topic per ``MIN_TOPIC_PROMPTS``
    prompts at most); 1 for fewer than four distinct prompts."""
    np, sklearn = _libraries()
    sample = z[:: max(1, len(z) // K_SEARCH_SAMPLE)][:K_SEARCH_SAMPLE]
    distinct = len(np.unique(sample.round(4), axis=0))
    grid = [k for k in K_GRID if k <= max(2, len(z) // MIN_TOPIC_PROMPTS) and k < distinct]
    if not grid:
        return 1
    scores = {}
    for k in grid:
        labels = sklearn.cluster.KMeans(k, n_init=1, random_state=0).fit_predict(sample)
        scores[k] = sklearn.metrics.silhouette_score(sample, labels, sample_size=min(2_000, len(sample)),
                                                     random_state=0)
    return max(grid, key=lambda k: (round(scores[k], 3), -k))
