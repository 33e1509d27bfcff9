from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def blas_threads_seen_by(monkeypatch):
    """``seen = blas_threads_seen_by(module, "name")`` wraps ``module.name`` so that every call
    records the set of thread counts of the loaded BLAS libraries; ``seen.now()`` gives the
    current set."""
    from threadpoolctl import threadpool_info

    def now():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    class Seen(list):
        pass

    def wrap(module, name):
        seen = Seen()
        seen.now = now
        real = getattr(module, name)

        def spy(*args, **kwargs):
            seen.append(now())
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
        return seen

    return wrap
