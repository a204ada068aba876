import math

import numpy as np
import pytest

from jaxexp.errors import ConfigError
from jaxexp.search import space


def test_grid_is_the_product_of_choices():
    params = space.parse({"train": {"lr": space.choice([1, 2, 3]), "b1": space.choice([0.5, 0.9])}})
    rows = space.expand(params, "grid", 0, 0)
    assert len(rows) == 6
    assert {(r["train.lr"], r["train.b1"]) for r in rows} == {(a, b) for a in (1, 2, 3) for b in (0.5, 0.9)}


def test_grid_of_distributions_with_num():
    (p,) = space.parse({"lr": space.log_uniform(1e-4, 1e-2, num=3)})
    assert np.allclose(space.grid_values(p), [1e-4, 1e-3, 1e-2])
    (q,) = space.parse({"h": space.int_uniform(2, 5)})
    assert space.grid_values(q) == [2, 3, 4, 5]
    (r,) = space.parse({"d": space.q_uniform(0.0, 0.5, 0.25)})
    assert space.grid_values(r) == [0.0, 0.25, 0.5]


def test_random_samples_respect_ranges_and_types():
    params = space.parse(
        {
            "a": space.uniform(-1.0, 1.0),
            "b": space.log_uniform(1e-5, 1e-1),
            "c": space.int_uniform(1, 4),
            "d": space.int_uniform(1, 1000, log=True),
            "e": space.q_uniform(0.0, 1.0, 0.1),
            "f": space.choice(["x", "y"], probabilities=[0.75, 0.25]),
            "g": space.fixed(7),
        }
    )
    rows = space.expand(params, "random", 2000, seed=3)
    col = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    assert col["a"].min() >= -1 and col["a"].max() <= 1
    assert col["b"].min() >= 1e-5 and col["b"].max() <= 1e-1
    # log-uniform: about half the mass below the geometric mean
    assert 0.45 < np.mean(col["b"] < math.sqrt(1e-5 * 1e-1)) < 0.55
    assert set(col["c"].tolist()) == {1, 2, 3, 4}
    assert all(isinstance(v, int) for v in col["c"].tolist())
    assert col["d"].min() >= 1 and col["d"].max() <= 1000
    assert np.allclose(col["e"] * 10, np.round(col["e"] * 10))
    assert 0.7 < np.mean(col["f"] == "x") < 0.8
    assert set(col["g"].tolist()) == {7}
    # same seed, same samples
    assert space.expand(params, "random", 5, seed=3) == rows[:5]


@pytest.mark.parametrize(
    "spec, fragment",
    [
        (space.uniform(1.0, 0.5), "train.lr: min (1) >= max (0.5)"),
        (space.log_uniform(0.0, 1.0), "train.lr: log_uniform needs min > 0"),
        ({"values": ()}, "train.lr: 'values' must be a non-empty list"),
        ({"values": (1, 2), "probabilities": (0.5, 0.6)}, "probabilities must be >= 0 and sum to 1"),
        ({"distribution": "gauss", "min": 0, "max": 1}, "unknown distribution 'gauss'"),
        ({"distribution": "q_uniform", "min": 0, "max": 1}, "needs a step 'q'"),
        ({"distribution": "uniform", "min": "1e-5", "max": 1}, "YAML float"),
        ({"values": (1,), "bogus": 1}, "unknown spec key"),
    ],
)
def test_bad_specs_name_the_parameter(spec, fragment):
    with pytest.raises(ConfigError) as e:
        space.parse({"train": {"lr": spec}})
    assert fragment in str(e.value)
    assert "sweep.space.train.lr" in str(e.value)
    assert "\n" not in str(e.value)


def test_continuous_grid_without_num_is_refused():
    params = space.parse({"lr": space.uniform(0.1, 0.2)})
    with pytest.raises(ConfigError, match="cannot be gridded"):
        space.expand(params, "grid", 0, 0)


def test_segment_length_avoids_masked_epochs():
    from jaxexp.run.population import segment_length

    assert segment_length(20, 5) == 5
    assert segment_length(12, 5) == 4  # 3 segments of 4, not 3 of 5
    assert segment_length(3, 5) == 3
    assert segment_length(13, 5) == 5  # no divisor in [3, 5]: one partial segment
    assert segment_length(30, 8) == 6


def test_quantised_values_count_from_min():
    (p,) = space.parse({"d": space.q_uniform(0.05, 0.45, 0.1)})
    assert space.grid_values(p) == [0.05, 0.15, 0.25, 0.35, 0.45]
    samples = set(space.sample(p, np.random.default_rng(0), 500))
    assert samples == {0.05, 0.15, 0.25, 0.35, 0.45}


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ({"distribution": "uniform", "min": 0, "max": 1, "num": "3"}, "'num' (grid points) must be an integer"),
        ({"values": (1, 2), "probabilities": 0.5}, "'probabilities' must be a list"),
        ({"distribution": ["uniform"], "min": 0, "max": 1}, "unknown distribution"),
    ],
)
def test_malformed_spec_types(spec, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        space.parse({"x": spec})


def test_huge_grids_are_refused_before_anything_is_allocated():
    def grid(spec):
        return space.expand(space.parse(spec), "grid", 0, 0)

    with pytest.raises(ConfigError, match=r"^sweep.space.lr: num=1000000000 grid points \(at most 1,000,000\)"):
        grid({"lr": space.log_uniform(1e-4, 1e-1, num=10**9)})
    with pytest.raises(ConfigError, match=r"a grid of up to 1,001,000 configurations \(a 1000 x b 1001\)"):
        grid({"a": space.uniform(0, 1, num=1000), "b": space.uniform(0, 1, num=1001)})
    assert len(grid({"a": space.uniform(0, 1, num=1000), "b": space.choice([1, 2])})) == 2000
