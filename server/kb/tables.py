"""Knowledge base: categories → sections → articles, translations, revisions, feedback."""

from piccolo.columns import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from server.accounts.tables import User

VISIBILITIES = ("public", "signed_in", "members", "internal")
STATUSES = ("draft", "published")


class KbCategory(Table):
    slug = Varchar(length=80, unique=True)
    name_en = Varchar(length=120)
    name_ja = Varchar(length=120)
    description_en = Text(default="")
    description_ja = Text(default="")
    position = Integer(default=0)
    visibility = Varchar(length=16, default="public")
    # For `members`: the perk tiers that may read (empty = every member tier; staff always may).
    tiers = JSON(default=[])


class KbSection(Table):
    category = ForeignKey(KbCategory, on_delete=OnDelete.cascade, index=True)
    slug = Varchar(length=80, unique=True)
    name_en = Varchar(length=120)
    name_ja = Varchar(length=120)
    description_en = Text(default="")
    description_ja = Text(default="")
    position = Integer(default=0)


class KbArticle(Table):
    """One article; its text lives in one translation per locale."""

    section = ForeignKey(KbSection, on_delete=OnDelete.restrict, index=True)
    slug = Varchar(length=120, unique=True)
    visibility = Varchar(length=16, null=True, default=None)  # None: the category's
    tiers = JSON(default=[])
    # The visibility in force (own or inherited), kept by services so SQL can filter on it.
    effective_visibility = Varchar(length=16, default="public", index=True)
    effective_tiers = JSON(default=[])
    tags = JSON(default=[])
    position = Integer(default=0)
    author = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz()
    view_count = Integer(default=0)
    helpful_yes = Integer(default=0)
    helpful_no = Integer(default=0)


class KbTranslation(Table):
    article = ForeignKey(KbArticle, on_delete=OnDelete.cascade, index=True)
    locale = Varchar(length=5)
    title = Varchar(length=200)
    body_md = Text()
    body_html = Text()
    status = Varchar(length=10, default="draft", index=True)
    published_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz()
    updated_by = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    version = Integer(default=1)  # optimistic lock: an edit names the version it started from


class KbRevision(Table):
    translation = ForeignKey(KbTranslation, on_delete=OnDelete.cascade, index=True)
    number = Integer()
    title = Varchar(length=200)
    body_md = Text()
    author = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz()
    note = Varchar(length=200, default="")


class KbFeedback(Table):
    article = ForeignKey(KbArticle, on_delete=OnDelete.cascade, index=True)
    locale = Varchar(length=5)
    voter_key = Varchar(length=80, index=True)  # "user:<id>" or "browser:<random cookie>"
    user = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    helpful = Boolean()
    comment = Text(default="")
    created_at = Timestamptz()
    updated_at = Timestamptz()
