"""Image decoding that a hostile upload cannot turn into a memory bomb or a parser exploit surface."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

from PIL import Image, UnidentifiedImageError


class ImageRejected(ValueError):
    """The bytes are not an acceptable image; `status` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def decode_image(
    data: bytes, *, max_bytes: int, max_pixels: int, formats: Sequence[str], name: str = "image"
) -> Image.Image:
    if len(data) > max_bytes:
        raise ImageRejected(f"{name}: {len(data)} bytes exceeds the limit of {max_bytes}", 413)
    if not data:
        raise ImageRejected(f"{name}: empty upload")
    try:
        with warnings.catch_warnings():
            # Pillow warns (not raises) between 1x and 2x MAX_IMAGE_PIXELS; treat that as a rejection too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Only the header is parsed here; checking format and size before `load()` keeps bombs unread.
            image: Image.Image = Image.open(io.BytesIO(data), formats=list(formats))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected(f"{name}: {width}x{height} pixels exceeds the limit of {max_pixels}", 413)
            image.load()
    except ImageRejected:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"{name}: not a supported image ({', '.join(formats)}): {exc}", 415) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"{name}: corrupt image: {exc}") from None
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image
