"""ColPali embedding service (GPU node group; port 7000). Nothing heavy is imported here."""
