"""Support vector machine baseline (scikit-learn) on the flattened DE, eye or face features, or their concatenation.

Unlike the torch models it trains in one call (no epochs) and its fitted
state is a dict of plain numpy arrays and scalars, so it can be stored and
restored without pickling (checkpoints are never unpickled).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from moodops.components.errors import ConfigError

_SCALARS = (int, float, str, bool, type(None), np.integer, np.floating)


class SVMClassifier:
    """``sklearn.svm.SVC`` on the variant's ``inputs`` flattened and concatenated.

    ``fit``/``predict`` take a dict of input arrays (``x (n, N, C, F)``, ``eye
    (n, N, E)``, ``face (n, N, D)``) or, for ``inputs=("x",)``, the ``x`` array.
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], n_classes: int, kernel: str = "rbf", c: float = 1.0,
                 gamma: str | float = "scale", max_train: int = 20000, seed: int = 0,
                 inputs: tuple[str, ...] = ("x",)) -> None:
        if kernel not in ("linear", "rbf", "poly", "sigmoid"):
            raise ConfigError(f"The 'kernel' parameter must be one of linear, rbf, poly, sigmoid. Got {kernel!r} instead.")
        if not c > 0:
            raise ConfigError(f"The 'c' parameter must be a float > 0. Got {c} instead.")
        if max_train < 2:
            raise ConfigError(f"The 'max_train' parameter must be an int >= 2. Got {max_train} instead.")
        self.inputs = tuple(inputs)
        self.n_features = sum(math.prod(shapes[k]) for k in self.inputs)
        self.n_classes = n_classes
        self.params = {"kernel": kernel, "C": float(c), "gamma": gamma}
        self.max_train = max_train
        self.seed = seed
        self.model_ = None

    def design_matrix(self, inputs: dict[str, np.ndarray] | np.ndarray) -> np.ndarray:
        """``(n, n_features)``: the variant's inputs flattened and concatenated in order."""
        if not isinstance(inputs, dict):
            inputs = {"x": inputs}
        n = len(inputs[self.inputs[0]])
        return np.concatenate([inputs[k].reshape(n, -1) for k in self.inputs], axis=1)

    def fit(self, inputs: dict[str, np.ndarray] | np.ndarray, y: np.ndarray) -> SVMClassifier:
        """Fit on at most ``max_train`` rows (a seeded subsample: SVC is quadratic in n)."""
        from sklearn.svm import SVC

        x = self.design_matrix(inputs)
        if len(x) > self.max_train:
            rng = np.random.default_rng(self.seed)
            keep = np.sort(rng.choice(len(x), self.max_train, replace=False))
            x, y = x[keep], y[keep]
        self.model_ = SVC(**self.params, random_state=self.seed).fit(x, y)
        return self

    def predict(self, inputs: dict[str, np.ndarray] | np.ndarray) -> np.ndarray:
        if self.model_ is None:
            raise RuntimeError("SVMClassifier.predict called before fit")
        return self.model_.predict(self.design_matrix(inputs)).astype(np.int64)

    def state(self) -> dict[str, Any]:
        """The fitted SVC's attributes: numpy arrays and scalars only."""
        import sklearn

        if self.model_ is None:
            raise RuntimeError("SVMClassifier.state called before fit")
        attrs = {}
        for k, v in vars(self.model_).items():
            if isinstance(v, np.ndarray) and v.dtype != object:
                attrs[k] = v
            elif isinstance(v, _SCALARS):
                attrs[k] = v.item() if isinstance(v, np.generic) else v
            elif isinstance(v, tuple) and all(isinstance(i, _SCALARS) for i in v):
                attrs[k] = [i.item() if isinstance(i, np.generic) else i for i in v]
        return {"sklearn_version": sklearn.__version__, "attributes": attrs}

    def from_state(self, state: dict[str, Any]) -> SVMClassifier:
        """Rebuild the fitted SVC from :meth:`state` (same scikit-learn version only)."""
        import sklearn
        from sklearn.svm import SVC

        if state.get("sklearn_version") != sklearn.__version__:
            raise ConfigError(f"SVM state was saved with scikit-learn {state.get('sklearn_version')}, "
                              f"this is {sklearn.__version__}: refit it")
        model = SVC(**self.params)
        for k, v in state["attributes"].items():
            setattr(model, k, tuple(v) if isinstance(v, list) else v)
        self.model_ = model
        return self
