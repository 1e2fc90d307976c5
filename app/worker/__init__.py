"""Indexing worker (arq on Redis): PDF -> page JPEGs in S3 -> ColPali multivectors -> Qdrant."""
