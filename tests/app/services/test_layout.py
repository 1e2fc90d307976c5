"""The collection layout the speed figures were measured on is the one every process creates and migrates to."""

from __future__ import annotations

from qdrant_client import models

from app.core.settings import CollectionSettings
from app.services.layout import (
    COLUMNS,
    ORIGINAL,
    POOLED_HNSW,
    POOLED_QUANTIZATION,
    PREFETCH_EF,
    PREFETCH_LIMIT,
    ROWS,
    vectors_config,
)


def test_the_settings_default_is_the_measured_pooled_quantization() -> None:
    field = CollectionSettings.model_fields["qdrant_quantization"]
    assert field.default == POOLED_QUANTIZATION == "scalar"


def test_pooled_vectors_get_the_dense_graph_and_their_int8_copy() -> None:
    config = vectors_config(dim=128, on_disk=True, quantization=POOLED_QUANTIZATION, datatype="float16")
    for name in (ROWS, COLUMNS):
        assert config[name].hnsw_config == POOLED_HNSW
        assert isinstance(config[name].quantization_config, models.ScalarQuantization)
        assert config[name].on_disk is False  # the graph walk must not page from disk
    assert POOLED_HNSW.m == 32 and POOLED_HNSW.ef_construct == 200
    # `original` is rerank-only: no graph at all.
    assert config[ORIGINAL].hnsw_config == models.HnswConfigDiff(m=0)


def test_the_request_beam_is_no_narrower_than_the_shortlist() -> None:
    # Qdrant needs ef >= limit to return `limit` candidates from the graph walk.
    assert PREFETCH_EF >= PREFETCH_LIMIT == 50
