"""backprop: multilayer perceptrons trained by error backpropagation.

Every formula follows the lecture notes (W of shape (n_out, n_in), z = W a + b, the delta
recursion); see the README for a tour.
"""

from .activations import ACTIVATIONS, get_activation
from .callbacks import Callback, EarlyStopping, History, TrainingDiverged
from .explain import explain
from .gradcheck import gradcheck
from .io import load, save
from .layers import (
    MLP,
    ActivationLayer,
    Dense,
    Dropout,
    Embedding,
    Maxout,
    Sequential,
)
from .losses import LOSSES, SynapticPlasticity, get_loss
from .optimizers import OPTIMIZERS, get_optimizer
from .schedules import SCHEDULES, get_schedule
from .training import Trainer, evaluate, fit

__version__ = "0.1.0"

_LAZY = {"MLPClassifier": "estimators", "MLPRegressor": "estimators"}


def __getattr__(name):
    # The scikit-learn estimators import scikit-learn (slow): load them on first use only.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "MLP",
    "MLPClassifier",
    "MLPRegressor",
    "ActivationLayer",
    "Callback",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Embedding",
    "History",
    "Maxout",
    "Sequential",
    "SynapticPlasticity",
    "Trainer",
    "TrainingDiverged",
    "evaluate",
    "explain",
    "fit",
    "get_activation",
    "get_loss",
    "get_optimizer",
    "get_schedule",
    "gradcheck",
    "load",
    "save",
    "__version__",
]
