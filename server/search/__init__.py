"""Search: the Meilisearch client and its health. Document types register here (Help Center issue)."""
