"""Build a tiny, randomly initialised ColPali checkpoint offline (no hub, no downloads).

Same classes and file layout as `vidore/colpali-v1.3-hf` (PaliGemma = SigLIP vision tower + Gemma decoder, a
Gemma BPE tokenizer, a SigLIP image processor), only minuscule: 56x56 images in 14-pixel patches give a 4x4
patch grid, and the embedding dim stays 128 so every downstream shape matches production. Tests, benchmarks
and `make local` (when no real checkpoint is configured) load it with `local_files_only=True` through the
exact code path production uses. Its embeddings are random: retrieval quality is meaningless.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

WORDS = [
    "invoice",
    "total",
    "amount",
    "due",
    "date",
    "page",
    "report",
    "revenue",
    "quarter",
    "figure",
    "table",
    "chart",
    "summary",
    "contract",
    "party",
    "agreement",
    "signature",
    "annex",
    "section",
    "clause",
    "payment",
    "tax",
    "net",
    "gross",
    "balance",
    "sheet",
    "asset",
    "liability",
    "equity",
    "question",
    "answer",
    "describe",
    "the",
    "image",
    "what",
    "is",
    "how",
    "many",
    "which",
    "where",
    "when",
    "who",
    "why",
    "document",
    "scan",
]


def _corpus(lines: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 - reproducible filler text, not security
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(lines)]


def build_tiny_colpali(
    target: str | Path,
    *,
    image_size: int = 56,
    patch_size: int = 14,
    embedding_dim: int = 128,
    hidden_size: int = 32,
    layers: int = 1,
    seed: int = 0,
) -> Path:
    """Write config, safetensors weights, tokenizer and processor files to `target`; returns the path."""
    import json

    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import (
        ColPaliConfig,
        ColPaliForRetrieval,
        ColPaliProcessor,
        GemmaConfig,
        GemmaTokenizer,
        PaliGemmaConfig,
        SiglipVisionConfig,
    )
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]

    # Train a small BPE with the same normalizer/pre-tokenizer GemmaTokenizer rebuilds around vocab+merges.
    bpe = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))  # noqa: S106
    bpe.normalizer = normalizers.Replace(" ", "\u2581")
    bpe.pre_tokenizer = pre_tokenizers.Split(pattern=" ", behavior="merged_with_previous", invert=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False)
    bpe.train_from_iterator(_corpus(seed=seed), trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    merges: list[Any] = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tokenizer = GemmaTokenizer(vocab=state["vocab"], merges=merges)

    grid = image_size // patch_size
    image_processor = SiglipImageProcessorPil(
        size={"height": image_size, "width": image_size},
        image_seq_length=grid * grid,
    )
    image_processor.image_seq_length = grid * grid  # type: ignore[attr-defined]
    processor = ColPaliProcessor(image_processor=image_processor, tokenizer=tokenizer)
    vocab_size = len(processor.tokenizer)

    torch.manual_seed(seed)
    vision = SiglipVisionConfig(
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch_size,
        vision_use_head=False,
    )
    text = GemmaConfig(
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=hidden_size // 2,
        vocab_size=vocab_size,
        max_position_embeddings=512,
    )
    vlm = PaliGemmaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=processor.image_token_id,
        vocab_size=vocab_size,
        projection_dim=hidden_size,
        hidden_size=hidden_size,
    )
    config = ColPaliConfig(vlm_config=vlm, embedding_dim=embedding_dim)
    model = ColPaliForRetrieval(config).eval()
    model.save_pretrained(target)
    processor.save_pretrained(target)
    return target


def ensure_tiny_colpali(target: str | Path) -> Path:
    """Build once into `target` and reuse it (tests in several folders share one checkpoint per session)."""
    import fcntl

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    ready = target / ".ready"
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            build_tiny_colpali(target)
            ready.write_text("ok")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a tiny random ColPali checkpoint for tests/local runs.")
    parser.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    print(build_tiny_colpali(args.target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
