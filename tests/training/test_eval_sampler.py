"""evaluate.guidance_interval: the bundle's default, every step, or an interval; and what the results record."""

from __future__ import annotations

import pytest

from training.config import ConfigError, load_config
from training.evaluate import EvalItem, _effective_interval, _interval_arg


@pytest.mark.parametrize(("override", "config_value", "engine_arg"), [
    (None, "default", "default"),
    ("evaluate.guidance_interval=all", "all", None),
    ("evaluate.guidance_interval=[]", [], None),
    ("evaluate.guidance_interval=[0.28, 5.42]", [0.28, 5.42], (0.28, 5.42)),
])
def test_the_setting_reaches_the_engine_as_it_means(override, config_value, engine_arg) -> None:
    cfg = load_config("tiny", [override] if override else [])
    assert cfg.evaluate.guidance_interval == config_value
    assert _interval_arg(cfg.evaluate.guidance_interval) == engine_arg


def test_a_bad_interval_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        load_config("tiny", ["evaluate.guidance_interval=sometimes"])


def test_the_results_record_the_interval_the_takes_used() -> None:
    def item(gi):
        return EvalItem(clip=None, start=0.0, real=None, generated=[], gt_times=[], gt_source="annotated",
                        settings={"guidance_interval": gi})

    assert _effective_interval([item([0.28, 5.42])]) == [0.28, 5.42]
    assert _effective_interval([item(None)]) == [] and _effective_interval([]) == []
