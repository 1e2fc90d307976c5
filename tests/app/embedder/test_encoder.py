"""The real transformers ColPali code path on the tiny checkpoint, loaded offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from app.embedder.encoder import ColPaliEncoder, pick_device, pick_dtype
from app.services.pooling import PatchSpan, mean_pool


def test_info_describes_the_checkpoint(tiny_encoder, tiny_colpali):
    info = tiny_encoder.info
    assert (info.dim, info.image_seq_length, info.grid) == (128, 16, (4, 4))
    assert info.device == "cpu" and info.dtype == "float32" and info.model == str(tiny_colpali)


def test_image_embeddings_carry_the_patch_span(tiny_encoder):
    images = [Image.new("RGB", (120, 160), (255, 255, 255)), Image.new("RGB", (300, 90), (10, 20, 30))]
    out = tiny_encoder.embed_images(images)
    assert len(out) == 2
    for item in out:
        assert item.vectors.dtype == np.float32 and item.vectors.shape[1] == 128
        assert item.patch == PatchSpan(start=0, length=16, rows=4, cols=4)
        assert item.vectors.shape[0] > 16  # patches + the visual prompt tokens
        np.testing.assert_allclose(np.linalg.norm(item.vectors, axis=1), 1.0, rtol=1e-4)
        pooled = mean_pool(item.vectors, item.patch)
        assert pooled.rows.shape[0] == 4 + item.vectors.shape[0] - 16
    # Different pixels give different vectors: the model really looked at the image.
    assert not np.allclose(out[0].vectors[:16], out[1].vectors[:16])


def test_batching_does_not_change_results(tiny_encoder):
    a, b = Image.new("RGB", (64, 64), (200, 0, 0)), Image.new("RGB", (64, 64), (0, 200, 0))
    together = tiny_encoder.embed_images([a, b])
    alone = tiny_encoder.embed_images([b])
    np.testing.assert_allclose(together[1].vectors, alone[0].vectors, atol=1e-5)


def test_query_padding_is_stripped(tiny_encoder):
    short, long = tiny_encoder.embed_queries(["total", "what is the total amount due on the invoice"])
    assert short.patch is None
    assert short.vectors.shape[0] < long.vectors.shape[0]
    assert np.all(np.linalg.norm(short.vectors, axis=1) > 0.99)
    alone = tiny_encoder.embed_queries(["total"])[0]
    np.testing.assert_allclose(alone.vectors, short.vectors, atol=1e-5)


def test_missing_checkpoint_is_refused_offline(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint directory"):
        ColPaliEncoder(str(tmp_path / "nothing-here"), local_files_only=True)
    with pytest.raises(OSError, match=r"EMBEDDER_MODEL='vidore/colpali-v1\.3-hf' cannot be loaded offline"):
        ColPaliEncoder("vidore/colpali-v1.3-hf", local_files_only=True)


def test_device_and_dtype_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert pick_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    if not torch.cuda.is_available():
        assert pick_device("auto").type == "cpu"
        with pytest.raises(RuntimeError, match="EMBEDDER_DEVICE='cuda'"):
            pick_device("cuda")
