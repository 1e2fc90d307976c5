"""ColPali inference: load the checkpoint, pick device and dtype, turn images and queries into multivectors."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import ColPaliForRetrieval, ColPaliProcessor

from app.services.multivector_wire import Multivector
from app.services.pooling import PatchSpan

log = logging.getLogger(__name__)


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("EMBEDDER_DEVICE='cuda' but no CUDA device is visible (allowed: auto, cuda, cpu)")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    if requested != "auto":
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[requested]
    if device.type == "cuda":
        # bf16 where the GPU has it (Ampere+), else fp16; CPU stays fp32 (half precision is slow there).
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


@dataclass(frozen=True)
class EncoderInfo:
    model: str
    device: str
    dtype: str
    dim: int
    image_seq_length: int
    grid: tuple[int, int]


class ColPaliEncoder:
    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        local_files_only: bool = True,
        revision: str | None = None,
    ) -> None:
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        kwargs: dict[str, Any] = {"local_files_only": local_files_only}
        if revision:
            kwargs["revision"] = revision
        if model.startswith(("/", ".", "~")) and not Path(model).expanduser().is_dir():
            raise FileNotFoundError(f"EMBEDDER_MODEL={model!r}: no such checkpoint directory")
        try:
            self.processor = ColPaliProcessor.from_pretrained(model, **kwargs)
            self.model = ColPaliForRetrieval.from_pretrained(model, dtype=self.dtype, **kwargs)
        except OSError as exc:
            where = "offline (local_files_only; sync the weights to a directory)" if local_files_only else ""
            raise OSError(f"EMBEDDER_MODEL={model!r} cannot be loaded {where}: {exc}") from exc
        self.model = self.model.to(self.device).eval()  # type: ignore[arg-type]
        vision: Any = self.model.config.vlm_config.vision_config  # type: ignore[union-attr]
        side = vision.image_size // vision.patch_size
        seq = int(self.processor.image_seq_length)
        if side * side != seq:
            side = math.isqrt(seq)
        self.info = EncoderInfo(
            model=model,
            device=str(self.device),
            dtype=str(self.dtype).removeprefix("torch."),
            dim=int(self.model.config.embedding_dim),
            image_seq_length=seq,
            grid=(side, side),
        )
        self.image_token_id = int(self.processor.image_token_id)
        log.info("loaded ColPali %s on %s as %s", model, self.info.device, self.info.dtype)

    @torch.inference_mode()
    def embed_images(self, images: Sequence[Image.Image]) -> list[Multivector]:
        batch = self.processor.process_images(list(images)).to(self.device)
        embeddings = self.model(**batch).embeddings
        ids = batch["input_ids"]
        mask = batch["attention_mask"].bool()
        rows, cols = self.info.grid
        out = []
        for i in range(embeddings.shape[0]):
            keep = mask[i]
            vectors = embeddings[i][keep].float().cpu().numpy()
            image_positions = (ids[i][keep] == self.image_token_id).nonzero().flatten()
            start = int(image_positions[0]) if len(image_positions) else 0
            span = PatchSpan(start=start, length=len(image_positions), rows=rows, cols=cols)
            out.append(Multivector(vectors=vectors, patch=span))
        return out

    @torch.inference_mode()
    def embed_queries(self, texts: Sequence[str]) -> list[Multivector]:
        batch = self.processor.process_queries(list(texts)).to(self.device)
        embeddings = self.model(**batch).embeddings
        mask = batch["attention_mask"].bool()
        # Padding rows are zero vectors after masking; dropping them keeps payloads small and MaxSim exact.
        return [
            Multivector(vectors=np.ascontiguousarray(embeddings[i][mask[i]].float().cpu().numpy()))
            for i in range(embeddings.shape[0])
        ]
