"""visionrag services: the API (`app.api`), the indexing worker, the embedder and the shared core."""
