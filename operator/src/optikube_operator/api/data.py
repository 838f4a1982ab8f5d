"""`spec.data`: where the examples come from, how they are preprocessed and split."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from optikube_operator.api.base import ApiModel, Rule, exactly_one, listed

BuiltinDataset = Literal["digits", "iris", "wine", "breast_cancer"]


def _not_a_bool(value: object) -> object:
    # True == 1 in Python, and pydantic's Literal check lets it through; JSON and the CRD do not
    if isinstance(value, bool):
        raise PydanticCustomError("literal_error", "Input should be 1 or 3")
    return value


Channels = Annotated[Literal[1, 3], BeforeValidator(_not_a_bool)]

# what a CSV written by pandas, R, a spreadsheet or a UCI data set uses for an empty cell
DEFAULT_NA_VALUES = ("", "NA", "N/A", "nan", "NaN", "null", "NULL", "None", "?")


class SyntheticSource(ApiModel):
    """A data set generated from a seed, for demos and tests that need no download."""

    kind: Literal["images", "text", "tabular"] = Field(
        description="What to generate: small images, token sequences or feature vectors."
    )
    samples: int = Field(2000, ge=16, le=1_000_000, description="Number of examples to generate.")
    classes: int = Field(4, ge=2, le=1000, description="Number of target classes.")
    features: int = Field(32, ge=1, le=100_000, description="Features per example (tabular only).")
    image_size: int = Field(28, ge=8, le=512, description="Height and width in pixels (images only).")
    channels: Channels = Field(1, description="Color channels: 1 (grayscale) or 3 (RGB) (images only).")
    informative: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Features that carry signal (tabular only); half of features if unset.",
    )
    words_per_sample: int = Field(32, ge=4, le=4096, description="Words per example (text only).")
    noise: float = Field(0.1, ge=0, le=1, description="Label noise / feature noise level, 0 = separable.")


class FileSource(ApiModel):
    """Files on a mounted volume (e.g. a PVC mounted through `spec.resources`)."""

    path: str = Field(min_length=1, max_length=1024, description="Path of the file or folder inside the pod.")
    format: Literal["csv", "npz", "imagefolder"] = Field(
        description="csv: one row per example; npz: arrays `x` and `y`; imagefolder: a sub-folder per class."
    )
    target_column: str = Field("label", max_length=256, description="Column holding the label (csv only).")
    features_key: str = Field("x", max_length=256, description="Array holding the features (npz only).")
    text_column: str | None = Field(
        None,
        max_length=256,
        description="Column holding raw text; set it for text classification (csv only).",
    )
    image_size: int = Field(
        32, ge=4, le=1024, description="Images are resized to this square size (imagefolder)."
    )
    channels: Channels = Field(3, description="1 (grayscale) or 3 (RGB) (imagefolder only).")
    na_values: list[Annotated[str, Field(max_length=64)]] = Field(
        list(DEFAULT_NA_VALUES),
        max_length=100,
        description="Cells read as missing (csv only), compared after trimming spaces; like pandas'"
        " na_values, but these replace the defaults rather than add to them."
        " spec.data.preprocessing.missingValues says what happens to missing cells.",
    )
    categorical_columns: list[Annotated[str, Field(max_length=256)]] | None = Field(
        None,
        max_length=10_000,
        description="Feature columns holding categories (csv only), encoded as"
        " spec.data.preprocessing.categorical says; every other feature column must then hold numbers."
        " Unset: a column is categorical when fewer than half of its cells are numbers.",
    )
    ignore_columns: list[Annotated[str, Field(max_length=256)]] = Field(
        default_factory=list,
        max_length=10_000,
        description="Columns that are not features, such as ids or free-text notes (csv only).",
    )


class TorchvisionSource(ApiModel):
    """A torchvision data set (needs internet or a pre-populated `root`)."""

    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9]*$",
        max_length=64,
        description="Class name in torchvision.datasets, e.g. CIFAR10, MNIST, FashionMNIST.",
    )
    root: str = Field("/data", max_length=1024, description="Folder holding (or receiving) the data set.")
    download: bool = Field(False, description="Download into `root` when missing.")
    max_samples: int | None = Field(
        None, ge=1, description="Use at most this many examples (a quick subset)."
    )


class HuggingFaceSource(ApiModel):
    """A Hugging Face Hub data set (needs internet or a local cache)."""

    name: str = Field(min_length=1, max_length=256, description="Data set id on the Hub, e.g. imdb.")
    split: str = Field(
        "train", max_length=64, description="Split to load; validation/test are carved from it."
    )
    text_column: str = Field("text", max_length=256, description="Column holding the input text.")
    label_column: str = Field("label", max_length=256, description="Column holding the integer label.")
    max_samples: int | None = Field(
        None, ge=1, description="Use at most this many examples (a quick subset)."
    )


class DataSource(ApiModel):
    """Where the examples come from. Set exactly one field."""

    builtin: BuiltinDataset | None = Field(
        None, description=f"A data set that ships with scikit-learn: {listed(get_args(BuiltinDataset))}."
    )
    synthetic: SyntheticSource | None = Field(None, description="A generated data set.")
    file: FileSource | None = Field(None, description="Files on a mounted volume.")
    torchvision: TorchvisionSource | None = Field(None, description="A torchvision data set.")
    huggingface: HuggingFaceSource | None = Field(None, description="A Hugging Face Hub data set.")

    RULES = (exactly_one("data source", "builtin", "synthetic", "file", "torchvision", "huggingface"),)


class FeatureSelection(ApiModel):
    """Keep only informative features (tabular data)."""

    method: Literal["varianceThreshold", "kBest"] = Field(
        description="varianceThreshold drops features whose variance is <= threshold; kBest keeps the k"
        " features with the highest ANOVA F-score."
    )
    threshold: float = Field(0.0, ge=0, description="Variance threshold (varianceThreshold only).")
    k: int | None = Field(
        None, ge=1, le=100_000, description="Features to keep (kBest only; required there)."
    )

    RULES = (
        Rule(
            cel="self.method != 'kBest' || has(self.k)",
            message="kBest needs k, the number of features to keep",
            check=lambda s: s.method != "kBest" or s.k is not None,
            field="k",
        ),
    )


class RandomCrop(ApiModel):
    """Pad, then crop back to the original size at a random offset."""

    padding: int = Field(4, ge=0, le=64, description="Pixels of zero padding on each side before cropping.")


class Augmentation(ApiModel):
    """Random image transforms applied to training examples only."""

    horizontal_flip: bool = Field(False, description="Flip left-right with probability 0.5.")
    vertical_flip: bool = Field(False, description="Flip top-bottom with probability 0.5.")
    rotation_degrees: float = Field(
        0.0, ge=0, le=180, description="Rotate by a random angle in [-d, d] degrees."
    )
    random_crop: RandomCrop | None = Field(None, description="Random crop after padding; omit to disable.")

    @property
    def enabled(self) -> bool:
        return (
            self.horizontal_flip
            or self.vertical_flip
            or self.rotation_degrees > 0
            or self.random_crop is not None
        )


class TextPreprocessing(ApiModel):
    """How raw text becomes token ids."""

    tokenizer: Literal["word", "char", "pretrained"] = Field(
        "word",
        description="word: split on non-letters; char: characters; pretrained: the Hugging Face model's own"
        " tokenizer (only with spec.model.huggingface).",
    )
    vocab_size: int = Field(5000, ge=100, le=1_000_000, description="Most frequent tokens kept (word/char).")
    max_length: int = Field(
        64, ge=4, le=4096, description="Sequences are truncated or padded to this length."
    )
    lowercase: bool = Field(True, description="Lowercase before tokenizing.")
    remove_stop_words: bool = Field(False, description="Drop English stop words (scikit-learn's list).")
    extra_stop_words: list[str] = Field(
        default_factory=list, max_length=1000, description="More words to drop when removeStopWords is on."
    )


class MissingValues(ApiModel):
    """What happens to missing cells of a CSV (those in spec.data.source.file.naValues)."""

    strategy: Literal["impute", "drop", "error"] = Field(
        "impute",
        description="impute: fill each missing feature cell with a statistic of the training split"
        " (scikit-learn's SimpleImputer), a row without a label is an error; drop: leave out every row"
        " with a missing cell in a feature or the label; error: fail naming the first missing cell.",
    )
    numeric: Literal["mean", "median", "mostFrequent", "constant"] = Field(
        "median", description="Fill of numeric columns (impute only); constant uses fillValue."
    )
    categorical: Literal["mostFrequent", "constant"] = Field(
        "mostFrequent",
        description="Fill of categorical columns (impute only); constant makes missing a category of"
        " its own, named `missing`.",
    )
    fill_value: float = Field(0.0, description="The value of the numeric constant fill.")


class CategoricalEncoding(ApiModel):
    """How categorical columns become numbers; categories are learned from the training split."""

    encoding: Literal["oneHot", "ordinal"] = Field(
        "oneHot",
        description="oneHot: a 0/1 feature per category (scikit-learn's OneHotEncoder); ordinal: one"
        " feature holding the category's index in sorted order (OrdinalEncoder).",
    )
    max_categories: int = Field(
        32,
        ge=2,
        le=10_000,
        description="Per column, the most frequent categories kept (oneHot only); the rarer ones"
        " share one `infrequent` feature. A category the training split lacks is all zeros (oneHot)"
        " or -1 (ordinal).",
    )


class Preprocessing(ApiModel):
    """Transforms applied to every split; statistics are fitted on the training split only."""

    missing_values: MissingValues = Field(
        default_factory=MissingValues, description="Missing cells of a CSV: impute, drop or fail."
    )
    categorical: CategoricalEncoding = Field(
        default_factory=CategoricalEncoding, description="Encoding of a CSV's categorical columns."
    )

    normalization: Literal["none", "standard", "minmax"] = Field(
        "standard",
        description="Feature scaling of tabular data and images: standard (zero mean, unit variance),"
        " minmax (to [0, 1]) or none. Ignored for text.",
    )
    feature_selection: FeatureSelection | None = Field(
        None, description="Feature selection; omit to keep all."
    )
    augmentation: Augmentation | None = Field(None, description="Image augmentation; omit to disable.")
    text: TextPreprocessing | None = Field(None, description="Tokenization; used when the data are text.")


class CrossValidation(ApiModel):
    """k-fold cross-validation inside each tuning trial."""

    folds: int = Field(ge=2, le=20, description="Number of folds; each trial trains this many times.")


class DataSpec(ApiModel):
    """The data: source, preprocessing, and the validation/test split."""

    source: DataSource = Field(description="Where the examples come from.")
    preprocessing: Preprocessing = Field(default_factory=Preprocessing, description="Preprocessing steps.")
    validation_split: float = Field(
        0.2,
        gt=0,
        le=0.5,
        description="Fraction of the training data held out to score trials and drive early stopping.",
    )
    test_split: float = Field(
        0.2, ge=0, le=0.5, description="Fraction held out for the final evaluation, never seen during tuning."
    )
    cross_validation: CrossValidation | None = Field(
        None, description="k-fold cross-validation in trials (replaces validationSplit there)."
    )

    RULES = (
        Rule(
            cel="self.validationSplit + self.testSplit < 0.9",
            message="validationSplit + testSplit must leave at least 10% of the data for training",
            check=lambda s: s.validation_split + s.test_split < 0.9,
            field="testSplit",
        ),
    )
