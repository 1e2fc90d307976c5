from tests.app.indexing_support import embedder_url, tiny_colpali

__all__ = ["embedder_url", "tiny_colpali"]
