"""Knowledge base: categories → sections → articles, translations, revisions, feedback."""

from server.kb import search  # noqa: F401 - registers the "kb" search document type
