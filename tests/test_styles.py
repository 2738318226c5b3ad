"""Style names -> model weights (transflower.styles): strength moves weight between the style and auto."""
import numpy as np
import pytest

from transflower.errors import UserError
from transflower.styles import style_weights

STYLES = ["auto", "cha-cha", "rumba", "waltz"]


@pytest.mark.parametrize("strength,expected", [
    (1.0, [0, 0, 1, 0]),      # as trained: one-hot
    (0.0, [1, 0, 0, 0]),      # all on auto
    (0.5, [0.5, 0, 0.5, 0]),  # half way
    (2.5, [-1.5, 0, 2.5, 0]),  # extrapolated away from auto
])
def test_strength_weights_sum_to_one(strength, expected):
    w = style_weights("rumba", STYLES, strength)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, expected, atol=1e-7)
    assert w.sum() == pytest.approx(1.0)  # the embedding stays an affine combination


def test_auto_and_errors():
    assert style_weights(None, STYLES) is None and style_weights("auto", STYLES, 3.0) is None
    with pytest.raises(UserError, match=r"--style tango: expected one of \['auto'"):
        style_weights("tango", STYLES)
    with pytest.raises(UserError, match="this model has no style input"):
        style_weights("waltz", [])
    for bad in (-0.5, 4.5, float("nan"), "strong"):
        with pytest.raises(UserError, match="style strength .*expected a number in 0..4"):
            style_weights("waltz", STYLES, bad)
