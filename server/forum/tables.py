"""Forum tables. Every table is `forum_*`.

Posts are numbered densely 1..N inside their thread (a soft-deleted post keeps its number), so
"page p" is the number range ((p-1)*20, p*20] and "jump to post N" needs no counting: both are a
range scan on the (thread_id, number) index that the migration adds. Per-user uniqueness
(one reaction of a kind, one bookmark, one read mark) is a single `key` column with a unique
index, kept by the services.
"""

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

AUDIENCES = ("public", "signed_in", "members", "staff")
POSTERS = ("signed_in", "staff")
REACTIONS = ("like", "heart", "laugh", "hooray", "eyes", "thinking")


class ForumCategory(Table, tablename="forum_category"):
    slug = Varchar(length=80, unique=True)
    name_en = Varchar(length=120)
    name_ja = Varchar(length=120)
    description_en = Text(default="")
    description_ja = Text(default="")
    colour = Varchar(length=7, default="#2f6fdf")
    position = Integer(default=0)
    audience = Varchar(length=16, default="public")
    tiers = JSON(default=[])  # for `members`: the tiers that may read (empty: every member)
    can_start = Varchar(length=16, default="signed_in")  # who may start threads
    can_reply = Varchar(length=16, default="signed_in")
    qa = Boolean(default=False)  # Q&A: a thread can have an accepted answer
    thread_count = Integer(default=0)
    created_at = Timestamptz()


class ForumThread(Table, tablename="forum_thread"):
    category = ForeignKey(ForumCategory, on_delete=OnDelete.restrict, index=True)
    title = Varchar(length=200)
    slug = Varchar(length=120, default="")
    locale = Varchar(length=5, default="en")
    author = ForeignKey(User, on_delete=OnDelete.set_null, null=True, index=True)
    tags = JSON(default=[])  # for display; ForumThreadTag is what per-tag lists query
    created_at = Timestamptz(index=True)
    last_posted_at = Timestamptz(index=True)
    last_poster = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    post_count = Integer(default=1)  # = the highest post number (deleted posts keep theirs)
    reply_count = Integer(default=0)  # replies not deleted (the "unanswered" list: 0)
    reaction_count = Integer(default=0)
    score = Integer(default=0, index=True)  # "top" lists: replies and reactions
    first_post_id = Integer(null=True, default=None)
    accepted_post_id = Integer(null=True, default=None)
    solved = Boolean(default=False, index=True)
    pinned = Boolean(default=False)
    locked = Boolean(default=False)
    hidden = Boolean(default=False)
    deleted_at = Timestamptz(null=True, default=None)
    view_count = Integer(default=0)


class ForumPost(Table, tablename="forum_post"):
    thread = ForeignKey(ForumThread, on_delete=OnDelete.cascade, index=True)
    number = Integer()  # 1 = the thread's first post
    author = ForeignKey(User, on_delete=OnDelete.set_null, null=True, index=True)
    body_md = Text()
    body_html = Text()
    locale = Varchar(length=5, default="en")
    reply_to_id = Integer(null=True, default=None)  # the post answered (same thread)
    reply_to_number = Integer(null=True, default=None)
    reactions = JSON(default={})  # kind -> count, kept by the services (no query per page)
    version = Integer(default=1)  # optimistic lock: an edit names the version it started from
    created_at = Timestamptz()
    edited_at = Timestamptz(null=True, default=None)
    deleted_at = Timestamptz(null=True, default=None)


class ForumPostRevision(Table, tablename="forum_post_revision"):
    """The text a post had before each edit (the current text is on the post)."""

    post = ForeignKey(ForumPost, on_delete=OnDelete.cascade, index=True)
    version = Integer()
    body_md = Text()
    author = ForeignKey(User, on_delete=OnDelete.set_null, null=True)
    created_at = Timestamptz()


class ForumReaction(Table, tablename="forum_reaction"):
    post = ForeignKey(ForumPost, on_delete=OnDelete.cascade, index=True)
    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=16)
    key = Varchar(length=64, unique=True)  # "<post>:<user>:<kind>": one per user per kind
    created_at = Timestamptz()


class ForumBookmark(Table, tablename="forum_bookmark"):
    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    thread = ForeignKey(ForumThread, on_delete=OnDelete.cascade, index=True)
    post_number = Integer(default=1)
    key = Varchar(length=64, unique=True)  # "<user>:<thread>"
    created_at = Timestamptz()


class ForumThreadRead(Table, tablename="forum_thread_read"):
    """How far a user has read a thread: unread counts and "jump to first unread"."""

    user = ForeignKey(User, on_delete=OnDelete.cascade, index=True)
    thread = ForeignKey(ForumThread, on_delete=OnDelete.cascade, index=True)
    last_read_number = Integer(default=0)
    key = Varchar(length=64, unique=True)  # "<user>:<thread>"
    updated_at = Timestamptz()


class ForumThreadTag(Table, tablename="forum_thread_tag"):
    """One row per tag on a thread: per-tag lists are an indexed lookup."""

    thread = ForeignKey(ForumThread, on_delete=OnDelete.cascade, index=True)
    tag = Varchar(length=40, index=True)
