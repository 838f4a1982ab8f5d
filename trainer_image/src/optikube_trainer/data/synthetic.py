"""Generated data sets: class-patterned images, topic-worded texts and tabular blobs."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_classification

from optikube_operator.api.data import SyntheticSource
from optikube_trainer.data.raw import RawData
from optikube_trainer.data.text import ENGLISH_STOP_WORDS

# Topic words: each class draws most of its content words from its own topic, the rest is shared
TOPICS: list[list[str]] = [
    [
        "goal",
        "match",
        "team",
        "score",
        "league",
        "coach",
        "player",
        "season",
        "striker",
        "referee",
        "stadium",
        "tournament",
        "defender",
        "penalty",
        "trophy",
        "keeper",
    ],
    [
        "market",
        "stock",
        "profit",
        "bank",
        "investor",
        "shares",
        "trade",
        "revenue",
        "inflation",
        "budget",
        "earnings",
        "dividend",
        "merger",
        "currency",
        "interest",
        "loan",
    ],
    [
        "planet",
        "galaxy",
        "orbit",
        "telescope",
        "rocket",
        "astronaut",
        "comet",
        "nebula",
        "gravity",
        "lunar",
        "satellite",
        "cosmos",
        "asteroid",
        "launch",
        "spacecraft",
        "star",
    ],
    [
        "recipe",
        "oven",
        "flour",
        "butter",
        "garlic",
        "sauce",
        "bake",
        "spice",
        "dough",
        "kitchen",
        "roast",
        "salad",
        "pepper",
        "simmer",
        "dessert",
        "onion",
    ],
    [
        "virus",
        "patient",
        "doctor",
        "vaccine",
        "clinic",
        "therapy",
        "symptom",
        "hospital",
        "nurse",
        "dose",
        "diagnosis",
        "surgery",
        "infection",
        "immune",
        "medicine",
        "health",
    ],
    [
        "guitar",
        "album",
        "concert",
        "melody",
        "drummer",
        "lyrics",
        "chorus",
        "band",
        "singer",
        "tempo",
        "rhythm",
        "studio",
        "piano",
        "festival",
        "vinyl",
        "encore",
    ],
    [
        "court",
        "judge",
        "lawyer",
        "verdict",
        "trial",
        "jury",
        "appeal",
        "statute",
        "witness",
        "evidence",
        "contract",
        "lawsuit",
        "defendant",
        "ruling",
        "attorney",
        "justice",
    ],
    [
        "forest",
        "river",
        "glacier",
        "climate",
        "wildlife",
        "rain",
        "drought",
        "species",
        "habitat",
        "ocean",
        "soil",
        "coral",
        "storm",
        "valley",
        "meadow",
        "volcano",
    ],
]
NEUTRAL_WORDS = [
    "people",
    "today",
    "report",
    "new",
    "week",
    "year",
    "city",
    "group",
    "time",
    "many",
    "said",
    "world",
    "local",
    "great",
    "small",
    "long",
    "early",
    "part",
    "place",
    "way",
]
_STOP_SAMPLE = sorted(ENGLISH_STOP_WORDS)[:60]


def synthetic_text(source: SyntheticSource, seed: int) -> RawData:
    rng = np.random.default_rng(seed)
    topics = [TOPICS[c % len(TOPICS)] for c in range(source.classes)]
    labels = rng.integers(0, source.classes, size=source.samples)
    texts: list[str] = []
    for label in labels:
        words: list[str] = []
        for _ in range(source.words_per_sample):
            roll = rng.random()
            if roll < 0.35:
                words.append(str(rng.choice(_STOP_SAMPLE)))
            elif roll < 0.55:
                words.append(str(rng.choice(NEUTRAL_WORDS)))
            elif rng.random() < source.noise * 2:
                # noise: a content word of a random class
                words.append(str(rng.choice(topics[int(rng.integers(0, source.classes))])))
            else:
                words.append(str(rng.choice(topics[int(label)])))
        texts.append(" ".join(words).capitalize() + ".")
    return RawData(
        task="text", texts=texts, labels=labels, class_names=[f"topic{c}" for c in range(source.classes)]
    )


def synthetic_images(source: SyntheticSource, seed: int) -> RawData:
    rng = np.random.default_rng(seed)
    size, channels = source.image_size, source.channels
    # smooth class templates: a few random 2-D sinusoids per class and channel
    yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    templates = np.zeros((source.classes, channels, size, size), dtype=np.float32)
    for c in range(source.classes):
        for ch in range(channels):
            for _ in range(3):
                fy, fx = rng.uniform(0.5, 3.0, size=2)
                phase = rng.uniform(0, 2 * np.pi)
                templates[c, ch] += np.sin(2 * np.pi * (fy * yy + fx * xx) + phase).astype(np.float32)
    labels = rng.integers(0, source.classes, size=source.samples)
    images = templates[labels].copy()
    shifts = rng.integers(-1, 2, size=(source.samples, 2))
    for i, (dy, dx) in enumerate(shifts):
        images[i] = np.roll(images[i], shift=(int(dy), int(dx)), axis=(1, 2))
    images += rng.normal(0.0, 0.5 + 2.0 * source.noise, size=images.shape).astype(np.float32)
    return RawData(task="image", features=images, labels=labels)


def synthetic_tabular(source: SyntheticSource, seed: int) -> RawData:
    informative = source.informative or max(2, source.features // 2)
    # make_classification needs 2**informative >= classes
    informative = min(max(informative, int(np.ceil(np.log2(source.classes)))), source.features)
    x, y = make_classification(
        n_samples=source.samples,
        n_features=source.features,
        n_informative=informative,
        n_redundant=min(2, source.features - informative),
        n_classes=source.classes,
        n_clusters_per_class=1,
        flip_y=source.noise,
        random_state=seed,
    )
    return RawData(task="tabular", features=x, labels=y)


def load_synthetic(source: SyntheticSource, seed: int) -> RawData:
    if source.kind == "text":
        return synthetic_text(source, seed)
    if source.kind == "images":
        return synthetic_images(source, seed)
    return synthetic_tabular(source, seed)
