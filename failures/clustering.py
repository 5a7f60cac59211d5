"""Clustering incidents into failure modes, labelling them, and keeping mode ids
stable across runs. Pure functions over numpy arrays; the database side is in
traces/services.py (`failure_modes_recluster`).

- Vectors are unit-length sentence embeddings (cosine geometry). Above
  `REDUCE_ABOVE` incidents they are reduced with PCA to `REDUCED_DIMS` before
  HDBSCAN, which is slow in 384 dimensions; below it the full vectors separate
  modes better.
- Above `MAX_SAMPLE` incidents, HDBSCAN runs on a random sample and the rest
  join the nearest cluster centroid when close enough (else stay noise). That
  bounds the run time on large workspaces (bench/cluster.py).
- Noise (label -1) stays noise: it is never forced into a mode.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

REDUCED_DIMS = 24
MAX_SAMPLE = 12_000
REDUCE_ABOVE = 3000
NOISE = -1


def cluster_vectors(
    vectors: np.ndarray,
    *,
    min_cluster_size: int,
    join_similarity: float = 0.8,
    seed: int = 0,
    keys: list[str] | None = None,
) -> np.ndarray:
    """A cluster label per row (-1 for noise).

    With `keys` (one per row; equal keys mean the same embedded text), identical
    texts are clustered once, weighted by how often they occur (copies up to
    `min_cluster_size`, so a text seen that often is a mode on its own), and every
    row with that key gets the same label: two occurrences of one failure can
    never land in different modes.
    """
    if keys is None:
        return _cluster_rows(vectors, min_cluster_size, join_similarity, seed)
    first: dict[str, int] = {}
    counts: Counter[str] = Counter(keys)
    for row, key in enumerate(keys):
        first.setdefault(key, row)
    unique = list(first)
    if not unique:
        return np.full(0, NOISE)
    copies = [min(counts[k], min_cluster_size) for k in unique]
    expanded = np.repeat(np.arange(len(unique)), copies)
    points = vectors[[first[k] for k in unique]][expanded]
    expanded_labels = _cluster_rows(points, min_cluster_size, join_similarity, seed)
    unique_labels = np.full(len(unique), NOISE)
    # The copies of one text are identical points: they share a label; take the
    # commonest among them all the same.
    for position in range(len(unique)):
        found = expanded_labels[expanded == position]
        values, tally = np.unique(found, return_counts=True)
        unique_labels[position] = values[np.argmax(tally)]
    # Cohesion: a text no closer to its cluster's centre than a newcomer must be
    # to join a mode (join_similarity) is not of that mode. Identical copies make
    # dense cores that a few unrelated texts could otherwise hang on to.
    base = vectors[[first[k] for k in unique]]
    weights = np.array([counts[k] for k in unique], dtype=np.float64)
    for label in set(unique_labels.tolist()) - {NOISE}:
        members = np.flatnonzero(unique_labels == label)
        centre = (base[members] * weights[members, None]).sum(axis=0)
        centre = centre / max(float(np.linalg.norm(centre)), 1e-9)
        far = members[base[members] @ centre < join_similarity]
        unique_labels[far] = NOISE
    # A text seen min_cluster_size times is a mode on its own, even where there
    # are too few points for HDBSCAN to run (one failure repeating, one category).
    next_label = int(unique_labels.max()) + 1 if len(unique_labels) else 0
    for position, key in enumerate(unique):
        if unique_labels[position] == NOISE and counts[key] >= min_cluster_size:
            unique_labels[position], next_label = next_label, next_label + 1
    index = {k: i for i, k in enumerate(unique)}
    return np.array([unique_labels[index[k]] for k in keys])


def cluster_within(
    vectors: np.ndarray,
    groups: list[str],
    *,
    min_cluster_size: int,
    join_similarity: float = 0.8,
    keys: list[str] | None = None,
) -> np.ndarray:
    """`cluster_vectors` run separately inside each group (a failure category), so
    a mode never mixes, say, an error with a skipped step that reads alike."""
    labels = np.full(len(vectors), NOISE)
    offset = 0
    for group in sorted(set(groups)):
        rows = np.array([i for i, g in enumerate(groups) if g == group])
        part = cluster_vectors(
            vectors[rows], min_cluster_size=min_cluster_size, join_similarity=join_similarity,
            keys=[keys[i] for i in rows] if keys is not None else None,
        )  # fmt: skip
        found = part != NOISE
        labels[rows[found]] = part[found] + offset
        offset += int(part.max()) + 1 if found.any() else 0
    return labels


def cluster_vectors_baseline(vectors: np.ndarray, *, min_cluster_size: int) -> np.ndarray:
    """Every row clustered as it is (before issue 4/7); bench/modes.py compares."""
    return _cluster_rows(vectors, min_cluster_size, 0.8, 0)


def _cluster_rows(
    vectors: np.ndarray, min_cluster_size: int, join_similarity: float, seed: int
) -> np.ndarray:
    n = len(vectors)
    if n < max(2 * min_cluster_size, 4):
        return np.full(n, NOISE)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, MAX_SAMPLE, replace=False)) if n > MAX_SAMPLE else np.arange(n)
    # PCA only pays on large sets; on small ones it blurs modes apart (measured:
    # demo data NMI 0.86 reduced vs 1.0 in full 384 dimensions).
    reduced = _reduce(vectors[sample], seed) if len(sample) > REDUCE_ABOVE else vectors[sample]
    sample_labels = _hdbscan(reduced, min_cluster_size, single=False)
    if not (sample_labels != NOISE).any():
        # A workspace may have just one failure kind so far; that is a mode too.
        # Only as a fallback: allowed from the start, it let one catch-all cluster
        # swallow everything on small real sets (issue 4/7).
        sample_labels = _hdbscan(reduced, min_cluster_size, single=True)
    labels = np.full(n, NOISE)
    labels[sample] = sample_labels
    if len(sample) < n:
        rest = np.setdiff1d(np.arange(n), sample)
        labels[rest] = assign_nearest(vectors[rest], centroids(vectors, labels), join_similarity)
    return labels


def merge_same_text(labels: np.ndarray, texts: list[str]) -> np.ndarray:
    """Clusters whose commonest text is the same are one mode: relabel them to the
    first of them; and noise rows with exactly that text join it."""
    labels = labels.copy()
    dominant: dict[str, int] = {}
    for label in sorted(set(labels.tolist()) - {NOISE}):
        members = [texts[i] for i in np.flatnonzero(labels == label)]
        text = Counter(members).most_common(1)[0][0]
        if text in dominant:
            labels[labels == label] = dominant[text]
        else:
            dominant[text] = label
    for row, text in enumerate(texts):
        if labels[row] == NOISE and text in dominant:
            labels[row] = dominant[text]
    return labels


def _hdbscan(vectors: np.ndarray, min_cluster_size: int, *, single: bool) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    model = HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min(min_cluster_size, 5),
        cluster_selection_method="eom",
        allow_single_cluster=single,
        copy=True,
    )
    return np.asarray(model.fit_predict(vectors))


def _reduce(vectors: np.ndarray, seed: int) -> np.ndarray:
    dims = min(REDUCED_DIMS, vectors.shape[1], len(vectors) - 1)
    if dims >= vectors.shape[1] or dims < 2:
        return vectors
    from sklearn.decomposition import PCA

    reduced = PCA(n_components=dims, random_state=seed).fit_transform(vectors)
    norms = np.linalg.norm(reduced, axis=1, keepdims=True)
    return reduced / np.maximum(norms, 1e-9)


def centroids(vectors: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Unit-length mean vector of each cluster (noise excluded)."""
    result = {}
    for label in np.unique(labels):
        if label == NOISE:
            continue
        mean = vectors[labels == label].mean(axis=0)
        result[int(label)] = mean / max(np.linalg.norm(mean), 1e-9)
    return result


def assign_nearest(
    vectors: np.ndarray, cluster_centroids: dict[int, np.ndarray], min_similarity: float
) -> np.ndarray:
    """Nearest centroid by cosine similarity, or -1 when none is close enough."""
    if not cluster_centroids or len(vectors) == 0:
        return np.full(len(vectors), NOISE)
    keys = np.array(list(cluster_centroids))
    matrix = np.stack([cluster_centroids[k] for k in keys])
    sims = vectors @ matrix.T
    best = sims.argmax(axis=1)
    return np.where(sims[np.arange(len(vectors)), best] >= min_similarity, keys[best], NOISE)


def match_clusters(
    new: dict[int, set[int]],
    old: dict[int, set[int]],
    new_centroids: dict[int, np.ndarray],
    old_centroids: dict[int, np.ndarray],
    *,
    min_similarity: float = 0.85,
) -> dict[int, int | None]:
    """Map each new cluster to the existing mode it continues, or None for a new mode.

    `new` and `old` map a cluster / mode id to its incident ids. A cluster
    continues the mode that held most of its incidents before (each mode claimed
    at most once, largest overlaps first); a cluster of only new incidents
    continues the unclaimed mode whose centroid is nearest, if similar enough.
    """
    pairs = []
    for cluster, members in new.items():
        for mode, before in old.items():
            overlap = len(members & before)
            if overlap and (overlap * 2 >= len(before) or overlap * 3 >= len(members)):
                pairs.append((overlap, cluster, mode))
    result: dict[int, int | None] = dict.fromkeys(new)
    claimed: set[int] = set()
    for _, cluster, mode in sorted(pairs, reverse=True):
        if result[cluster] is None and mode not in claimed:
            result[cluster], claimed = mode, claimed | {mode}
    for cluster in new:
        if result[cluster] is not None or cluster not in new_centroids:
            continue
        candidates = [
            (float(new_centroids[cluster] @ vector), mode)
            for mode, vector in old_centroids.items()
            if mode not in claimed
        ]
        if candidates:
            similarity, mode = max(candidates)
            if similarity >= min_similarity:
                result[cluster] = mode
                claimed.add(mode)
    return result


# Words that every signature has (field names, mask tokens) say nothing about a mode.
_SIGNATURE_WORDS = {
    "tool", "error", "input", "task", "string", "number", "none", "null", "boolean",
    "object", "str", "url", "uuid", "ts", "path", "hex", "last", "output", "verdict",
    "trace", "failed", "category",
    # The product's own wording of a finding ("never called `X`, which successful
    # runs of the same task did"; "3 of 3 similar successful runs called"): it says
    # nothing of what sets a mode apart.
    "called", "did", "successful", "runs", "run", "similar",
}  # fmt: skip


def ctfidf_keywords(docs: dict[int, list[str]], *, top: int = 6) -> dict[int, list[str]]:
    """Class-based TF-IDF: the words that set each cluster's signatures apart.

    Each cluster's signatures form one document; a term scores by its frequency
    in the cluster times log(1 + average words per cluster / its frequency over
    all clusters).
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    classes = [c for c in docs if docs[c]]
    if not classes:
        return {}
    stop = ENGLISH_STOP_WORDS | _SIGNATURE_WORDS
    tokens = re.compile(r"\w+(?:\.\w+)*").findall

    def terms_of(text: str) -> list[str]:
        # Words (an ASCII letter, then 2 or more letters, digits, "_" or "."), and pairs
        # of words next to each other in the text: a pair is never made across a word
        # left out ("went on with assumed" is no "went assumed").
        kept = [
            w if len(w) > 2 and "a" <= w[0] <= "z" and w.isascii() and w not in stop else ""
            for w in tokens(text.lower())
        ]
        pairs = [f"{a} {b}" for a, b in zip(kept, kept[1:], strict=False) if a and b]
        return [w for w in kept if w] + pairs

    def analyse(signatures: list[str]) -> list[str]:
        # Word pairs within one field of one signature, never across two (the end
        # of an error and the start of a task are no phrase); the category field
        # is the product's own classification ("outcome.check_failed"), not words
        # of the mode.
        return [
            term
            for signature in signatures
            for part in signature.split(" | ")
            if not part.startswith("category:")
            for term in terms_of(part)
        ]

    vectorizer = CountVectorizer(analyzer=analyse, max_features=50_000)
    try:
        counts = vectorizer.fit_transform([docs[c] for c in classes]).toarray()
    except ValueError:  # only stop words
        return {c: [] for c in classes}
    terms = vectorizer.get_feature_names_out()
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    average = counts.sum() / len(classes)
    idf = np.log(1 + average / np.maximum(counts.sum(axis=0), 1))
    scores = tf * idf
    result = {}
    for row, cluster in enumerate(classes):
        order = np.argsort(-scores[row])
        words: list[str] = []
        for i in order:
            if scores[row, i] <= 0 or len(words) >= top:
                break
            term = str(terms[i])
            # Skip a unigram already inside a chosen bigram, and vice versa.
            if any(term in w or w in term for w in words):
                continue
            words.append(term)
        result[cluster] = words
    return result


@dataclass(frozen=True)
class ParsedSignature:
    tool: str
    error: str
    task: str


def parse_signature(signature: str) -> ParsedSignature:
    parts = dict(part.split(": ", 1) for part in signature.split(" | ") if ": " in part)
    return ParsedSignature(
        tool=parts.get("tool", ""),
        error=parts.get("error", ""),
        task=parts.get("task", ""),
    )


# HIVEMIND_CLUSTER_WITHIN: "category" (errors cluster together by their text;
# every other finding stays inside its failure category of the taxonomy),
# "group" (inside one of the taxonomy's five groups) or "none".
def category_group(signature: str, method: str = "") -> str:
    from django.conf import settings

    within = getattr(settings, "HIVEMIND_CLUSTER_WITHIN", "category")
    category = dict(part.split(": ", 1) for part in signature.split(" | ") if ": " in part).get(
        "category", ""
    )
    if within == "none":
        return ""
    if within == "group":
        return category.split(".", 1)[0]
    # One error's category can differ between runs (how it ended the run); its
    # text says what it is. Findings that are not errors are kept apart by kind.
    if method == "error":
        return "error"
    # A failed check of the outcome is kept apart by the check that failed: "`flag`
    # failed" and "`result rows` failed" read alike but are different failures.
    if category == OUTCOME_CHECK:
        check = _FAILED_CHECK.match(parse_signature(signature).error.strip())
        if check is not None:
            return f"{category}:{check.group(1)}"
    return category


OUTCOME_CHECK = "outcome.check_failed"
_FAILED_CHECK = re.compile(r"`([^`]+)` failed\b")


def mode_text(signature: str) -> str:
    """What a mode is about, from one incident's signature: its (normalised) error
    or finding. Two clusters with the same commonest text are one mode."""
    return parse_signature(signature).error.strip()


# Mask tokens, said in words (a label is read by people, not matched).
_MASK_WORDS = {
    "<url>": "a URL", "<uuid>": "an id", "<hex>": "an id", "<ts>": "a time",
    "<path>": "a file path", "<n>": "a number", "<str>": "a value", "<id>": "an id",
}  # fmt: skip


def in_words(text: str) -> str:
    text = re.sub(r"<n>(?=[a-z])", "N", text)  # a quantity with a unit: "<n>s" -> "Ns"
    for token, words in _MASK_WORDS.items():
        text = text.replace(token, words)
    return text


def mode_label(signatures: list[str], tools: list[str]) -> str:
    """A readable label: the mode's commonest finding (masks said in words), with
    the tool it concerns when the text does not name it already. A tool is named
    only when more than half of the mode's incidents concern it (`tools` has one
    entry per incident, "" for one that concerns no tool): a label must not pin
    on one tool what most of its incidents are not about."""
    texts = Counter(t for t in (mode_text(s) for s in signatures) if t and t != "trace failed")
    if texts:
        text = in_words(texts.most_common(1)[0][0])
    else:
        parsed = [parse_signature(s) for s in signatures]
        task = Counter(p.task for p in parsed if p.task).most_common(1)
        text = "failed while trying to " + in_words(task[0][0] if task else "finish the task")
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > 150:
        text = text[:150].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
    tool = [
        (name, n) for name, n in Counter(t for t in tools if t).most_common(1) if n * 2 > len(tools)
    ]
    about_the_run = text.startswith(("kept going", "stopped far"))  # not about one tool
    if (
        tool
        and not about_the_run
        and f"`{tool[0][0].lower()}`" not in text
        and not text.startswith(tool[0][0].lower())
    ):
        return f"{tool[0][0]}: {text}"
    return text


def sparkline(counts: list[int], width: int = 120, height: int = 24) -> str:
    """SVG polyline points for a small per-day bar of counts."""
    if not counts:
        return ""
    peak = max(max(counts), 1)
    step = width / max(len(counts) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - (c / peak) * (height - 2) - 1:.1f}" for i, c in enumerate(counts)
    )


def nmi_ari(true: list[Any], predicted: list[Any]) -> tuple[float, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return (
        float(normalized_mutual_info_score(true, predicted)),
        float(adjusted_rand_score(true, predicted)),
    )
