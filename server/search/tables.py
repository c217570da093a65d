"""Search analytics and admin-editable search settings."""

from piccolo.columns import JSON, Boolean, ForeignKey, Integer, OnDelete, Timestamptz, Varchar
from piccolo.table import Table


class SearchQueryLog(Table):
    token_id = Varchar(length=32, unique=True)  # from the signed result token: one row per results page
    query = Varchar(length=200, index=True)  # normalised: trimmed, lower-cased, spaces folded
    locale = Varchar(length=5, default="")
    result_count = Integer(default=0)
    degraded = Boolean(default=False)
    signed_in = Boolean(default=False)
    created_at = Timestamptz(index=True)


class SearchClick(Table):
    query_log = ForeignKey(SearchQueryLog, on_delete=OnDelete.cascade, index=True)
    doc_type = Varchar(length=20)
    doc_id = Varchar(length=60)
    position = Integer(default=0)
    created_at = Timestamptz()


class SearchSetting(Table):
    """Admin-edited settings applied to every index: `synonyms` (dict) and `stop_words` (list)."""

    key = Varchar(length=40, unique=True)
    value = JSON(default={})
    updated_at = Timestamptz()
