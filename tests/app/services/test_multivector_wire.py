from __future__ import annotations

import numpy as np
import pytest

from app.services import multivector_wire as wire
from app.services.pooling import PatchSpan


def _items():
    rng = np.random.default_rng(0)
    return [
        wire.Multivector(rng.standard_normal((10, 8)).astype(np.float32), PatchSpan(start=0, length=9, rows=3, cols=3)),
        wire.Multivector(rng.standard_normal((4, 8)).astype(np.float32), None),
    ]


def test_binary_round_trip_is_float16_exact_and_smaller_than_json():
    items = _items()
    data = wire.encode(items)
    back = wire.decode(data)
    for a, b in zip(items, back, strict=True):
        np.testing.assert_array_equal(b.vectors, a.vectors.astype(np.float16).astype(np.float32))
        assert b.patch == a.patch
    import json

    assert len(data) < len(json.dumps(wire.to_json(items))) / 3


def test_json_round_trip():
    items = _items()
    back = wire.from_json(wire.to_json(items))
    np.testing.assert_allclose(back[0].vectors, items[0].vectors)
    assert back[0].patch == items[0].patch and back[1].patch is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:5], "truncated"),
        (lambda d: b"XXXX" + d[4:], "not a multivector"),
        (lambda d: d[:-2], "body has"),
        (lambda d: d + b"\x00\x00", "body has"),
    ],
)
def test_corrupt_payloads_are_refused(mutate, message):
    with pytest.raises(ValueError, match=message):
        wire.decode(mutate(wire.encode(_items())))


def test_mixed_dims_are_refused():
    with pytest.raises(ValueError, match="same dim"):
        wire.encode([wire.Multivector(np.ones((2, 3))), wire.Multivector(np.ones((2, 4)))])
