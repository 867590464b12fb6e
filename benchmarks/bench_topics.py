"""Prompt topics and rephrase detection: methods compared on a labelled set, then at scale.

    python benchmarks/bench_topics.py                    # quality at 10k, speed/memory at 10k and 800k
    python benchmarks/bench_topics.py --large 0          # quality and the 10k timings only

Quality: adjusted Rand index, NMI and purity (the share of prompts whose topic's main intent
is theirs) of each method's topics against the intents of ``topic_prompts.prompts`` (chatter
left out of the score), the number of topics, the share left in no topic ("other"), and the
labels of the largest topics (readability). Speed and memory: each method in its own process
(peak RSS above the interpreter with NumPy/SciPy/scikit-learn imported), on 10k and on the
``--large`` prompts (fit on ``--sample`` of them, as the store does, then assign every one).
Last, rephrase detection on ``topic_prompts.rephrase_pairs``: precision/recall/F1 of each
similarity at its best threshold and at the one the store uses.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from topic_prompts import prompts, rephrase_pairs  # noqa: E402


# -- the previous method (anchor words), kept here for the comparison ------------------------
_WORD = re.compile(r"[^\W\d_]{3,}")
_STOP = frozenset("""about above after again against all also and any are because been before being below between
both but can cannot could did does doing down during each few for from further had has have having her here hers
herself him himself his how into its itself just let like more most much must myself nor not now off once only
other ought our ours ourselves out over own please same she should some such than that the their theirs them
themselves then there these they this those through too under until very was way were what when where which while
who whom why will with would you your yours yourself yourselves get got make want need know tell give use using
thanks thank hello hey""".split())


def _words(text):
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in _STOP)


def anchor(texts, k, sample):
    docs = [_words(t) for t in texts]
    n = len(docs)
    df = Counter(w for d in docs for w in d)
    idf = {w: math.log((1 + n) / (1 + c)) + 1 for w, c in df.items()}
    uncovered, postings, left, profiles = set(range(n)), {}, Counter(df), []
    for i, d in enumerate(docs):
        for w in d:
            postings.setdefault(w, []).append(i)
    while len(profiles) < 20 and left:
        best = min(left, key=lambda w: (-left[w], w))
        if left[best] < max(2, 0.01 * n):
            break
        members = [i for i in postings[best] if i in uncovered]
        uncovered.difference_update(members)
        for i in members:
            left.subtract(docs[i])
        left = +left
        weights = {w: c * idf[w] for w, c in Counter(w for i in members for w in docs[i]).items()}
        weights[best] *= 2
        top = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:30]
        total = sum(v for _, v in top)
        profiles.append({w: v / total for w, v in top})
    found = []
    for d in docs:
        scores = [sum(p.get(w, 0.0) for w in d) for p in profiles]
        best = max(range(len(scores)), key=scores.__getitem__) if scores else -1
        found.append(best if scores and scores[best] > 0 else -1)
    labels = [" · ".join(sorted(p, key=lambda w: -p[w])[:3]) for p in profiles]
    return found, labels


# -- scikit-learn candidates -----------------------------------------------------------------
def _fit_sample(texts, sample):
    step = max(1, len(texts) // sample)
    return texts[::step][:sample]


def _word_vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer
    return TfidfVectorizer(stop_words="english", sublinear_tf=True, min_df=2, max_df=0.5,
                           token_pattern=r"(?u)\b[^\W\d_]{2,}\b", dtype="float32")


def _char_union():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion
    return FeatureUnion([("word", _word_vectorizer()),
                         ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 4), sublinear_tf=True,
                                                  min_df=2, max_df=0.5, max_features=10_000, dtype="float32"))])


def _kmeans_labels(vectorizer, centers, top=3):
    names = vectorizer.get_feature_names_out()
    keep = [i for i, name in enumerate(names) if not name.startswith("char__")]
    out = []
    for c in centers:
        order = sorted(keep, key=lambda i: -c[i])[:top]
        out.append(" · ".join(names[i].removeprefix("word__") for i in order))
    return out


def _assign_chunks(transform, predict, texts, chunk=50_000):
    found = []
    for start in range(0, len(texts), chunk):
        found.extend(predict(transform(texts[start:start + chunk])).tolist())
    return found


def kmeans_word(texts, k, sample, union=False):
    from sklearn.cluster import MiniBatchKMeans
    vec = _char_union() if union else _word_vectorizer()
    x = vec.fit_transform(_fit_sample(texts, sample))
    km = MiniBatchKMeans(k, random_state=0, n_init=3, batch_size=2048).fit(x)
    return _assign_chunks(vec.transform, km.predict, texts), _kmeans_labels(vec, km.cluster_centers_)


def kmeans_union(texts, k, sample):
    return kmeans_word(texts, k, sample, union=True)


def lsa_kmeans(texts, k, sample):
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer
    vec = _word_vectorizer()
    x = vec.fit_transform(_fit_sample(texts, sample))
    lsa = make_pipeline(TruncatedSVD(100, random_state=0), Normalizer(copy=False))
    km = KMeans(k, random_state=0, n_init=3).fit(lsa.fit_transform(x))
    centers = lsa[0].inverse_transform(km.cluster_centers_)
    return _assign_chunks(lambda t: lsa.transform(vec.transform(t)), km.predict, texts), _kmeans_labels(vec, centers)


def nmf(texts, k, sample):
    from sklearn.decomposition import NMF
    vec = _word_vectorizer()
    x = vec.fit_transform(_fit_sample(texts, sample))
    model = NMF(k, init="nndsvda", random_state=0, max_iter=300).fit(x)
    return (_assign_chunks(lambda t: model.transform(vec.transform(t)), lambda w: w.argmax(1), texts),
            _kmeans_labels(vec, model.components_))


def hashing_kmeans(texts, k, sample):
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.pipeline import make_pipeline
    vec = make_pipeline(HashingVectorizer(stop_words="english", n_features=2 ** 18, alternate_sign=False,
                                          norm=None, dtype="float32"), TfidfTransformer(sublinear_tf=True))
    x = vec.fit_transform(_fit_sample(texts, sample))
    km = MiniBatchKMeans(k, random_state=0, n_init=3, batch_size=2048).fit(x)
    return _assign_chunks(vec.transform, km.predict, texts), [f"#{i}" for i in range(k)]  # hashes: no words


def store_method(texts, k, sample):
    """What the store runs (trubrics_otel.server.analytics.topic_model), k chosen by it."""
    from trubrics_otel.server.analytics import topic_model
    model = topic_model.fit(_fit_sample(texts, sample))
    found = []
    for start in range(0, len(texts), 50_000):
        found.extend(model.assign(texts[start:start + 50_000]))
    return found, [" · ".join(t[:3]) for t in model.terms]


METHODS = {"anchor words (previous)": anchor, "tf-idf words + MiniBatchKMeans": kmeans_word,
           "tf-idf words+char4 + MiniBatchKMeans": kmeans_union, "tf-idf words + LSA 100 + KMeans": lsa_kmeans,
           "tf-idf words + NMF": nmf, "hashing words + tf-idf + MiniBatchKMeans": hashing_kmeans,
           "store: words+char4 + LSA 50 + KMeans, k by silhouette": store_method}


def quality(found, labels):
    """ARI, NMI and purity (the share of prompts whose topic's main intent is theirs)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    keep = [i for i, label in enumerate(labels) if label != "noise"]
    truth, got = [labels[i] for i in keep], [found[i] for i in keep]
    by_topic = {}
    for t, g in zip(truth, got):
        by_topic.setdefault(g, Counter())[t] += 1
    purity = sum(c.most_common(1)[0][1] for c in by_topic.values()) / len(keep)
    return adjusted_rand_score(truth, got), normalized_mutual_info_score(truth, got), purity


def one(name, n, k, sample):
    """Run one method in this process: a JSON line with its figures."""
    import numpy, scipy.sparse, sklearn.cluster  # noqa: F401,E401  (the baseline RSS includes them)
    texts, labels = prompts(n, seed=7)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from threadpoolctl import threadpool_limits
    start = time.perf_counter()
    with threadpool_limits(1):  # as the store runs: threads lose on these sizes (topic_model._one_thread)
        found, names = METHODS[name](texts, k, sample)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ari, nmi, purity = quality(found, labels)
    sizes = Counter(found)
    other = sizes.get(-1, 0) / len(found)
    largest = [names[t] if t >= 0 else "other" for t, _ in sizes.most_common(6)]
    print(json.dumps({"seconds": seconds, "mb": (peak - base) / 1024, "ari": ari, "nmi": nmi, "purity": purity,
                      "topics": len(sizes), "other": other, "labels": largest}))


def rephrases(n):
    from trubrics_otel.server.analytics import topic_model
    pairs = rephrase_pairs(n, seed=11)
    truth = [same for _, _, same in pairs]
    model = topic_model.fit(prompts(10_000, seed=7)[0])  # the idf of the prompts around them
    jaccard = [len(_words(a) & _words(b)) / len(_words(a) | _words(b)) if _words(a) | _words(b) else 0.0
               for a, b, _ in pairs]
    measures = {"word-set Jaccard (previous)": jaccard, "char 4-gram tf-idf cosine (store)":
                model.similarities([a for a, _, _ in pairs], [b for _, b, _ in pairs])}
    print(f"\nrephrase detection on {n} labelled pairs (half rephrases)")
    print(f"{'measure':34} {'best thr':>8} {'P':>5} {'R':>5} {'F1':>5}   at store thr {'P':>5} {'R':>5} {'F1':>5}")
    for name, scores in measures.items():
        rows = {t / 100: _prf(scores, truth, t / 100) for t in range(5, 100, 5)}
        best = max(rows, key=lambda t: rows[t][2])
        at = topic_model.REPHRASE_SIMILARITY if "store" in name else 0.6
        print(f"{name:34} {best:8.2f} {rows[best][0]:5.2f} {rows[best][1]:5.2f} {rows[best][2]:5.2f}   "
              f"{at:12.2f} " + " ".join(f"{v:5.2f}" for v in _prf(scores, truth, at)))
        print("    precision / recall at " + ", ".join(
            f"{t}: {p:.3f} / {r:.3f}" for t in (0.3, 0.4, 0.5, 0.6) for p, r, _ in [_prf(scores, truth, t)]))


def _prf(scores, truth, threshold):
    tp = sum(1 for s, t in zip(scores, truth) if s >= threshold and t)
    fp = sum(1 for s, t in zip(scores, truth) if s >= threshold and not t)
    fn = sum(1 for s, t in zip(scores, truth) if s < threshold and t)
    p, r = tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=800_000, help="0 skips the large run")
    parser.add_argument("--sample", type=int, default=20_000, help="prompts a fit reads at most")
    parser.add_argument("--k", type=int, default=16, help="topics for the candidates (the store chooses its own)")
    parser.add_argument("--methods", help="comma-separated substrings of method names")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--pairs", type=int, default=2_000)
    args = parser.parse_args()
    if args.one:
        return one(args.one[0], int(args.one[1]), args.k, args.sample)
    chosen = [m for m in METHODS if not args.methods or any(s in m for s in args.methods.split(","))]
    print(f"{'method':54} {'n':>7} {'ARI':>5} {'NMI':>5} {'pure':>5} {'topics':>6} {'other':>5} {'s':>7} {'MB':>6}  largest topics")
    for n in [args.small] + ([args.large] if args.large else []):
        for name in chosen:
            if n > 100_000 and name.startswith(("tf-idf words + LSA", "tf-idf words + NMF")) and not args.methods:
                continue  # slow at scale; ask with --methods
            done = subprocess.run([sys.executable, __file__, "--one", name, str(n), "--k", str(args.k),
                                   "--sample", str(args.sample)], capture_output=True, text=True)
            if done.returncode:
                print(f"{name:54} {n:7} failed: {done.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{name:54} {n:7} {r['ari']:5.2f} {r['nmi']:5.2f} {r['purity']:5.2f} {r['topics']:6} {r['other']:5.0%} {r['seconds']:7.2f} "
                  f"{r['mb']:6.0f}  {' | '.join(r['labels'][:4])}", flush=True)
    rephrases(args.pairs)


if __name__ == "__main__":
    main()
