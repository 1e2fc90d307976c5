"""Injectable clients for the data path (object storage, Qdrant, the embedder, the job queue).

Nothing is imported here on purpose: the embedder image installs only the `embedder` extra and imports
`app.services.multivector_wire` without pulling minio, qdrant-client or redis.
"""
