"""Community pages: categories, thread lists, thread pages, posting, and the htmx partials.

Thin handlers: parse, call one service, render. Every read goes through `queries.access_*`
(404 for what the actor may not see), every write through a service (403 for what the actor
may not do). An htmx request gets the partial; a plain form post gets a redirect.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from markupsafe import Markup

from server import notifications, policy, ratelimit
from server.accounts.auth import CurrentActor, load_actor
from server.accounts.tables import User
from server.channels.forum_ticket import services as forum_ticket
from server.errors import Invalid, NotFound
from server.forum import cache, live, queries, services, views
from server.forum.tables import REACTIONS
from server.forum.urls import page_url, thread_url
from server.i18n import _, get_locale
from server.markdown import MAX_SOURCE_BYTES, MarkdownTooLarge, render
from server.policy import Actor, ensure, ensure_signed_in
from server.search.query import search
from server.web.forms import form_data
from server.web.render import page, redirect

POST_LIMIT = ratelimit.Limit("forum_post", attempts=10, window_seconds=60)
PREVIEW_LIMIT = ratelimit.Limit("forum_preview", attempts=60, window_seconds=60)
REF_RE = re.compile(r"^(?P<id>\d+)(?:-(?P<slug>[a-z0-9-]*))?$")
SIMILAR_LIMIT = 6
MENTION_LIMIT = 8


def localized(row: dict[str, Any], name: str) -> str:
    return row.get(f"{name}_{get_locale()}") or row.get(f"{name}_en") or ""


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return bool(getattr(request, "htmx", False))


async def throttle(actor: Actor) -> None:
    """Posting is limited per user (429 with Retry-After)."""
    await ratelimit.hit(POST_LIMIT, f"user:{actor.user_id}")


def too_large_message() -> str:
    return _(
        "Your post is longer than %(n)s KiB. Shorten it or split it into several posts.", n=MAX_SOURCE_BYTES // 1024
    )


def _category_view(category: dict[str, Any]) -> dict[str, Any]:
    return {**category, "name": localized(category, "name"), "description": localized(category, "description")}


async def _decorate(actor: Actor, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Category names and colours, URLs, and the viewer's unread/new markers (one query)."""
    by_id = {c["id"]: c for c in await queries.categories()}
    queries.mark_unread(actor, rows, await queries.read_marks(actor, [r["id"] for r in rows]))
    for row in rows:
        category = by_id.get(row["category_id"], {})
        row["category"] = {
            "slug": category.get("slug", ""),
            "name": localized(category, "name"),
            "colour": category.get("colour", ""),
        }
        row["url"] = thread_url(row["id"], row["slug"])
        row["unread_url"] = f"/community/t/{row['id']}/unread"
    return rows


def _filters(filter: str, period: str) -> tuple[str, str]:
    if filter not in queries.FILTERS:
        raise Invalid({"filter": _("Choose a list from the tabs.")})
    if period not in queries.TOP_PERIODS:
        raise Invalid({"period": _("Choose a period from the list.")})
    return filter, period


async def _list_context(
    request: Request[Any, Any, Any],
    actor: Actor,
    *,
    filter: str,
    period: str,
    cursor: str,
    category: dict[str, Any] | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    filter, period = _filters(filter, period)
    if not actor.is_authenticated:  # no per-reader markers: one render serves every visitor
        key = ("list-html", request.url.path, filter, period, cursor, get_locale())

        async def render_list() -> Markup:
            context = await _list_rows(request, actor, filter, period, cursor, category, tag)
            html = live.render_fragment("forum/_thread_list.html", {**context, "actor": actor}, get_locale())
            return Markup(html)  # noqa: S704 - our own template's output

        html = await cache.cached(key, render_list)
        return {**_tabs(request, filter, period), "list_html": html}
    return await _list_rows(request, actor, filter, period, cursor, category, tag)


def _tabs(request: Request[Any, Any, Any], filter: str, period: str) -> dict[str, Any]:
    base = request.url.path

    def url(**changes: str) -> str:
        params = {"filter": filter, "period": period if filter == "top" else "", **changes}
        if params.get("filter") == "latest":
            params["filter"] = ""
        query = urlencode({k: v for k, v in params.items() if v})
        return f"{base}?{query}" if query else base

    return {
        "filter": filter,
        "period": period,
        "url": url,
        "filters": [
            ("latest", _("Latest")),
            ("top", _("Top")),
            ("unanswered", _("Unanswered")),
            ("solved", _("Solved")),
            ("unsolved", _("Unsolved")),
        ],
        "periods": [("day", _("Today")), ("week", _("This week")), ("month", _("This month")), ("all", _("All time"))],
    }


async def _list_rows(
    request: Request[Any, Any, Any],
    actor: Actor,
    filter: str,
    period: str,
    cursor: str,
    category: dict[str, Any] | None,
    tag: str | None,
) -> dict[str, Any]:
    rows, next_cursor = await queries.list_threads(
        actor,
        filter=filter,
        period=period,
        category_ids=[category["id"]] if category else None,
        tag=tag,
        cursor=cursor,
    )
    tabs = _tabs(request, filter, period)
    return {
        **tabs,
        "threads": await _decorate(actor, rows),
        "next_url": tabs["url"](cursor=next_cursor) if next_cursor else None,
    }


@get("/community", name="community")
async def community_home(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    filter: FromQuery[str] = "latest",
    period: FromQuery[str] = "all",
    cursor: FromQuery[str] = "",
) -> Template:
    categories = [_category_view(c) for c in await queries.readable_categories(actor)]
    context = await _list_context(request, actor, filter=filter, period=period, cursor=cursor)
    if is_htmx(request) and "list_html" in context:
        return Response(content=context["list_html"], media_type="text/html", status_code=200)  # type: ignore[return-value]
    template = "forum/_thread_list.html" if is_htmx(request) else "forum/index.html"
    return page(request, template, {**context, "categories": categories, "can_post": actor.is_authenticated})


@get("/community/c/{forum_slug:str}")
async def category_page(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    forum_slug: FromPath[str],
    filter: FromQuery[str] = "latest",
    period: FromQuery[str] = "all",
    cursor: FromQuery[str] = "",
) -> Template:
    category = await queries.access_category(actor, forum_slug)
    context = await _list_context(request, actor, filter=filter, period=period, cursor=cursor, category=category)
    level = await notifications.subscription_level(actor.user_id, "category", category["id"])
    if is_htmx(request) and "list_html" in context:
        return Response(content=context["list_html"], media_type="text/html", status_code=200)  # type: ignore[return-value]
    template = "forum/_thread_list.html" if is_htmx(request) else "forum/list.html"
    return page(
        request,
        template,
        {
            **context,
            "category": _category_view(category),
            "can_start": policy.can_start_forum_thread(actor, category),
            "subscription": {"target_kind": "category", "target_id": category["id"], "level": level},
        },
    )


@get("/community/tags/{tag:str}")
async def tag_page(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    tag: FromPath[str],
    filter: FromQuery[str] = "latest",
    period: FromQuery[str] = "all",
    cursor: FromQuery[str] = "",
) -> Template:
    tag = tag.lower()[:40]
    context = await _list_context(request, actor, filter=filter, period=period, cursor=cursor, tag=tag)
    if is_htmx(request) and "list_html" in context:
        return Response(content=context["list_html"], media_type="text/html", status_code=200)  # type: ignore[return-value]
    template = "forum/_thread_list.html" if is_htmx(request) else "forum/list.html"
    return page(request, template, {**context, "tag": tag, "can_start": actor.is_authenticated})


# The thread page ----------------------------------------------------------------------------


def _group(actor: Actor) -> str:
    return "staff" if actor.is_staff else "reader"


@get("/community/t/{thread_ref:str}")
async def thread_page(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    thread_ref: FromPath[str],
    page_no: Annotated[int, QueryParameter(name="page")] = 1,
) -> Template | Redirect:
    match = REF_RE.match(thread_ref)
    if not match:
        raise NotFound
    thread_id, slug = int(match["id"]), match["slug"]
    group, locale = _group(actor), get_locale()

    async def load() -> tuple[int, dict[str, Any], dict[str, Any]]:
        event_id = await live.last_event_id()  # before the data: the socket replays what follows
        thread, category = await queries.access_thread(actor, thread_id)
        return event_id, thread, category

    # What every reader of one audience group sees is shared for a moment (and cleared by any
    # forum write in this process): a popular page costs no query per reader.
    scope = (policy.content_audience(actor) is None, actor.is_moderator, tuple(policy.search_audience(actor)))
    event_id, thread, category = await cache.cached(("thread", thread_id, group, scope), load)
    pages = queries.page_count(thread["post_count"])
    if slug != thread["slug"] or page_no < 1 or page_no > pages:
        return Redirect(path=page_url(thread["id"], thread["slug"], min(max(page_no, 1), pages)), status_code=301)

    async def render_posts() -> Markup:
        posts = await queries.posts_page(thread["id"], page_no)
        accepted = None
        if page_no == 1 and thread["accepted_post_id"]:
            accepted = await queries.get_post(thread["accepted_post_id"])
        context = {"posts": posts, "thread": thread, "category": category, "group": group, "accepted": accepted}
        return Markup(live.render_fragment("forum/_posts.html", {**context, "mine": ()}, locale))  # noqa: S704

    key = ("posts", thread["id"], page_no, group, locale, thread["post_count"], thread["accepted_post_id"])
    posts_html = await cache.cached(key, render_posts)
    first, last = (page_no - 1) * queries.PAGE_SIZE + 1, min(page_no * queries.PAGE_SIZE, thread["post_count"])
    views.record(thread["id"])
    signed_in = actor.is_authenticated
    mine = await queries.my_reactions_in(actor, thread["id"], first, last) if signed_in else set()
    level = await notifications.subscription_level(actor.user_id, "thread", thread["id"]) if signed_in else "normal"
    context = {
        "thread": thread,
        "category": _category_view(category),
        "posts_html": posts_html,
        "my_reactions": " ".join(f"{post_id}:{kind}" for post_id, kind in sorted(mine)),
        "page_no": page_no,
        "pages": pages,
        "page_url": lambda n: page_url(thread["id"], thread["slug"], n),
        "last_number": last,
        "group": group,
        "can_reply": policy.can_reply_forum(actor, category, thread),
        "is_moderator": policy.can_moderate_forum(actor),
        "bookmarked": await queries.is_bookmarked(actor, thread["id"]) if signed_in else False,
        "typing_id": live.typing_id(thread["id"]),
        "last_event_id": event_id,
        "views": thread["view_count"] + views.pending(thread["id"]),
        "subscription": {"target_kind": "thread", "target_id": thread["id"], "level": level},
        "ticket_panel": await forum_ticket.thread_panel(actor, thread["id"]),  # agents: tickets made from it
    }
    return page(request, "forum/thread.html", context)


@get("/community/t/{thread_id:int}/{target:str}")
async def jump(
    actor: CurrentActor, thread_id: FromPath[int], target: FromPath[str], n: FromQuery[str] = ""
) -> Redirect:
    """`/community/t/42/17` post 17, `/last`, `/unread` (the first unread post), `/jump?n=17`."""
    thread, _category = await queries.access_thread(actor, thread_id)
    if target == "last":
        number = thread["post_count"]
    elif target == "unread":
        number = min(await queries.last_read(actor, thread_id) + 1, thread["post_count"])
    elif target == "jump" and n.strip().isdigit():
        number = int(n.strip())
    elif target.isdigit():
        number = int(target)
    else:
        raise NotFound
    number = min(max(number, 1), thread["post_count"])
    url = page_url(thread_id, thread["slug"], queries.page_of(number))
    return Redirect(path=f"{url}#p{number}", status_code=303)


# Writing ------------------------------------------------------------------------------------


def _form_errors_response(
    request: Request[Any, Any, Any], template: str, context: dict[str, Any], status: int
) -> Template:
    return page(request, template, context, status_code=status)


async def _reply_form_context(actor: Actor, thread: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    return {"thread": thread, "values": values, "can_reply": True}


@post("/community/t/{thread_id:int}/replies")
async def reply(request: Request[Any, Any, Any], actor: CurrentActor, thread_id: FromPath[int]) -> Any:
    ensure_signed_in(actor)
    values = await form_data(request)
    thread, category = await queries.access_thread(actor, thread_id)
    ensure(policy.can_reply_forum(actor, category, thread), _("You may not reply in this thread."))
    await throttle(actor)
    reply_to = values.get("reply_to", "").strip()
    errors: dict[str, str] = {}
    status = 422
    try:
        post_row = await services.create_reply(
            actor, thread_id, values.get("body", ""), reply_to=int(reply_to) if reply_to.isdigit() else None
        )
    except Invalid as exc:
        errors = exc.errors
    except MarkdownTooLarge:
        errors, status = {"body": too_large_message()}, 413
    if errors:
        context = {"thread": thread, "values": values, "errors": errors, "can_reply": True}
        if is_htmx(request):
            return page(request, "forum/_reply_form.html", context, status_code=status)
        return page(
            request, "forum/reply_page.html", {**context, "category": _category_view(category)}, status_code=status
        )
    fresh = await queries.get_thread(thread_id) or thread
    if is_htmx(request):
        pages = queries.page_count(fresh["post_count"])
        context = {
            "thread": fresh,
            "values": {},
            "can_reply": True,
            "appended": live.post_context(post_row, fresh, category, _group(actor)),
            "on_last_page": values.get("page_no", "") == str(pages),
            "jump_url": thread_url(thread_id, fresh["slug"], post_row["number"]),
        }
        return page(request, "forum/_reply_form.html", context)
    return redirect(thread_url(thread_id, fresh["slug"], post_row["number"]) + f"#p{post_row['number']}")


@get("/community/t/{thread_id:int}/reply-form")
async def reply_form(
    request: Request[Any, Any, Any], actor: CurrentActor, thread_id: FromPath[int], quote: FromQuery[int] = 0
) -> Template:
    """The reply form, optionally quoting post number `quote` and answering it."""
    ensure_signed_in(actor)
    thread, category = await queries.access_thread(actor, thread_id)
    ensure(policy.can_reply_forum(actor, category, thread), _("You may not reply in this thread."))
    values: dict[str, str] = {}
    if quote:
        quoted = await queries.post_by_number(thread_id, quote)
        if quoted is None or quoted["deleted_at"] is not None:
            raise NotFound
        who = f"@{quoted['author_username']}" if quoted["author_username"] else quoted["author_name"] or ""
        lines = "\n".join(f"> {line}" if line else ">" for line in quoted["body_md"].strip().splitlines())
        values = {"body": _("%(who)s wrote:", who=who) + f"\n{lines}\n\n", "reply_to": str(quote)}
    template = "forum/_reply_form.html" if is_htmx(request) else "forum/reply_page.html"
    return page(
        request, template, {"thread": thread, "category": _category_view(category), "values": values, "can_reply": True}
    )


@post("/community/preview")
async def preview(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    ensure_signed_in(actor)
    await ratelimit.hit(PREVIEW_LIMIT, f"user:{actor.user_id}")
    values = await form_data(request)
    try:
        html = render(values.get("body", ""))
        error = ""
    except MarkdownTooLarge:
        html, error = "", too_large_message()
    return page(request, "forum/_preview.html", {"html": html, "error": error}, status_code=413 if error else 200)


@get("/community/posts/{post_id:int}/edit")
async def edit_form(request: Request[Any, Any, Any], actor: CurrentActor, post_id: FromPath[int]) -> Template:
    ensure_signed_in(actor)
    post_row, thread, _category = await queries.access_post(actor, post_id)
    ensure(policy.can_edit_forum_post(actor, thread, post_row), _("You may not edit this post."))
    context = {
        "post": post_row,
        "thread": thread,
        "values": {"body": post_row["body_md"], "version": str(post_row["version"])},
    }
    return page(request, "forum/_edit_form.html" if is_htmx(request) else "forum/edit_page.html", context)


@post("/community/posts/{post_id:int}/edit")
async def edit_post(request: Request[Any, Any, Any], actor: CurrentActor, post_id: FromPath[int]) -> Any:
    ensure_signed_in(actor)
    values = await form_data(request)
    post_row, thread, category = await queries.access_post(actor, post_id)
    ensure(policy.can_edit_forum_post(actor, thread, post_row), _("You may not edit this post."))
    await throttle(actor)
    version = values.get("version", "")
    context: dict[str, Any] = {"post": post_row, "thread": thread, "values": values}
    try:
        saved = await services.edit_post(
            actor, post_id, values.get("body", ""), int(version) if version.isdigit() else 0
        )
    except services.EditConflict as exc:
        # Show the other change; the form now starts from it (resubmitting is a deliberate overwrite).
        context.update(
            conflict=exc.current,
            values={"body": values.get("body", ""), "version": str(exc.current["version"])},
            errors={"body": _("Someone else changed this post while you were editing. Compare and save again.")},
        )
        return _edit_response(request, context, 409)
    except Invalid as exc:
        return _edit_response(request, {**context, "errors": exc.errors}, 422)
    except MarkdownTooLarge:
        return _edit_response(request, {**context, "errors": {"body": too_large_message()}}, 413)
    if is_htmx(request):
        return page(request, "forum/_post.html", live.post_context(saved, thread, category, _group(actor)))
    return redirect(thread_url(thread["id"], thread["slug"], saved["number"]) + f"#p{saved['number']}")


def _edit_response(request: Request[Any, Any, Any], context: dict[str, Any], status: int) -> Template:
    return page(
        request, "forum/_edit_form.html" if is_htmx(request) else "forum/edit_page.html", context, status_code=status
    )


@post("/community/posts/{post_id:int}/delete")
async def delete_post(request: Request[Any, Any, Any], actor: CurrentActor, post_id: FromPath[int]) -> Any:
    ensure_signed_in(actor)
    post_row, thread, category = await queries.access_post(actor, post_id)
    await services.delete_post(actor, post_id)
    if post_row["number"] == 1:
        return (
            Response(content="", status_code=200, headers={"HX-Redirect": f"/community/c/{category['slug']}"})
            if is_htmx(request)
            else redirect(f"/community/c/{category['slug']}")
        )
    fresh = await queries.get_post(post_id)
    if is_htmx(request) and fresh is not None:
        return page(request, "forum/_post.html", live.post_context(fresh, thread, category, _group(actor)))
    return redirect(thread_url(thread["id"], thread["slug"], post_row["number"]) + f"#p{post_row['number']}")


@get("/community/posts/{post_id:int}/history")
async def history(request: Request[Any, Any, Any], actor: CurrentActor, post_id: FromPath[int]) -> Template:
    post_row, thread, category = await queries.access_post(actor, post_id)
    if post_row["deleted_at"] is not None and not policy.can_moderate_forum(actor):
        raise NotFound
    revisions = await queries.revisions(post_id)
    return page(
        request,
        "forum/history.html",
        {"post": post_row, "thread": thread, "category": _category_view(category), "revisions": revisions},
    )


@post("/community/posts/{post_id:int}/accept")
async def accept(request: Request[Any, Any, Any], actor: CurrentActor, post_id: FromPath[int]) -> Any:
    ensure_signed_in(actor)
    _post, thread, _category = await queries.access_post(actor, post_id)
    await services.accept_answer(actor, post_id)
    return await _accepted_response(request, actor, thread, post_id)


@post("/community/t/{thread_id:int}/unaccept")
async def unaccept(request: Request[Any, Any, Any], actor: CurrentActor, thread_id: FromPath[int]) -> Any:
    ensure_signed_in(actor)
    thread, _category = await queries.access_thread(actor, thread_id)
    await services.unaccept_answer(actor, thread_id)
    return await _accepted_response(request, actor, thread, None)


async def _accepted_response(
    request: Request[Any, Any, Any], actor: Actor, before: dict[str, Any], post_id: int | None
) -> Any:
    """htmx: the same out-of-band fragments a live update carries (answer box and markers)."""
    if is_htmx(request):
        payload = {"thread_id": before["id"], "post_id": post_id, "previous_id": before["accepted_post_id"]}
        html = await live.render_answer(payload, _group(actor), get_locale())
        return Response(content=html, media_type="text/html", status_code=200)
    return redirect(thread_url(before["id"], before["slug"]))


@post("/community/posts/{post_id:int}/react")
async def toggle_reaction(request: Request[Any, Any, Any], actor: CurrentActor, post_id: FromPath[int]) -> Any:
    """Toggle the viewer's reaction of the submitted `kind` (the button pressed)."""
    ensure_signed_in(actor)
    kind = (await form_data(request)).get("kind", "")
    if kind not in REACTIONS:
        raise Invalid({"kind": _("Choose a reaction from the list.")})
    mine = await queries.my_reactions(actor, [post_id])
    await services.react(actor, post_id, kind, on=(post_id, kind) not in mine)
    post_row, thread, category = await queries.access_post(actor, post_id)
    if is_htmx(request):
        now_mine = frozenset(k for _p, k in await queries.my_reactions(actor, [post_id]))
        context = {**live.post_context(post_row, thread, category, _group(actor)), "mine": now_mine}
        return page(request, "forum/_reactions.html", context)
    return redirect(thread_url(thread["id"], thread["slug"], post_row["number"]) + f"#p{post_row['number']}")


@post("/community/t/{thread_id:int}/bookmark")
async def toggle_bookmark(request: Request[Any, Any, Any], actor: CurrentActor, thread_id: FromPath[int]) -> Any:
    ensure_signed_in(actor)
    thread, _category = await queries.access_thread(actor, thread_id)
    on = not await queries.is_bookmarked(actor, thread_id)
    await services.bookmark(actor, thread_id, on=on)
    if is_htmx(request):
        return page(request, "forum/_bookmark.html", {"thread": thread, "bookmarked": on})
    return redirect(thread_url(thread_id, thread["slug"]))


@post("/community/t/{thread_id:int}/read")
async def read(request: Request[Any, Any, Any], actor: CurrentActor, thread_id: FromPath[int]) -> Response[Any]:
    ensure_signed_in(actor)
    values = await form_data(request)
    number = values.get("number", "")
    if not number.isdigit():
        raise Invalid({"number": _("Which post did you read up to?")})
    await services.mark_read(actor, thread_id, int(number))
    return Response(content="", status_code=204)


@get("/community/bookmarks")
async def bookmarks_page(request: Request[Any, Any, Any], actor: CurrentActor) -> Template:
    ensure_signed_in(actor)
    rows = await queries.bookmarked_threads(actor)
    return page(request, "forum/bookmarks.html", {"threads": await _decorate(actor, rows)})


# Starting a thread --------------------------------------------------------------------------


async def _postable(actor: Actor) -> list[dict[str, Any]]:
    return [
        _category_view(c) for c in await queries.readable_categories(actor) if policy.can_start_forum_thread(actor, c)
    ]


@get("/community/new")
async def new_thread_form(
    request: Request[Any, Any, Any], actor: CurrentActor, title: FromQuery[str] = "", category: FromQuery[str] = ""
) -> Template:
    ensure_signed_in(actor)
    categories = await _postable(actor)
    values = {"title": title[:200], "category": category}
    return page(request, "forum/new.html", {"categories": categories, "values": values})


@post("/community/new")
async def new_thread(request: Request[Any, Any, Any], actor: CurrentActor) -> Any:
    ensure_signed_in(actor)
    values = await form_data(request)
    categories = await _postable(actor)
    slug = values.get("category", "")
    chosen = await queries.category_by_slug(slug)
    errors: dict[str, str] = {}
    status = 422
    if chosen is None or not policy.can_read_forum_category(actor, chosen):
        errors["category"] = _("Choose a category from the list.")
    else:
        ensure(policy.can_start_forum_thread(actor, chosen), _("You may not start threads in this category."))
        await throttle(actor)
        data = services.NewThread(
            category_id=chosen["id"],
            title=values.get("title", ""),
            body=values.get("body", ""),
            tags=re.split(r"[,\s]+", values.get("tags", "")),
        )
        try:
            thread_id = await services.create_thread(actor, data)
        except Invalid as exc:
            errors = exc.errors
        except MarkdownTooLarge:
            errors, status = {"body": too_large_message()}, 413
        else:
            thread = await queries.get_thread(thread_id)
            assert thread is not None
            return redirect(thread_url(thread_id, thread["slug"]))
    return page(
        request, "forum/new.html", {"categories": categories, "values": values, "errors": errors}, status_code=status
    )


@get("/community/new/similar")
async def similar(request: Request[Any, Any, Any], actor: CurrentActor, title: FromQuery[str] = "") -> Template:
    """Deflection: while a title is typed, threads and help articles that may already answer it."""
    title = " ".join(title.split())[:200]
    hits = []
    if len(title) >= 4:
        result = await search(actor, title, types=["thread", "kb"], limit=SIMILAR_LIMIT)
        hits = result.hits
    return page(request, "forum/_similar.html", {"hits": hits, "title": title})


@get("/community/mentions")
async def mention_candidates(
    request: Request[Any, Any, Any], actor: CurrentActor, q: FromQuery[str] = "", thread: FromQuery[int] = 0
) -> Template:
    """Autocomplete for @mentions: people whose handle or name starts with `q` and who may read
    the thread (or, on a new thread, anyone signed in may be mentioned once it is posted)."""
    ensure_signed_in(actor)
    q = q.strip().lstrip("@").lower()[:30]
    users: list[dict[str, Any]] = []
    if q:
        category, thread_row = None, None
        if thread:
            thread_row, category = await queries.access_thread(actor, thread)
        pattern = q.replace("\\", "").replace("%", "").replace("_", "\\_")
        rows = (
            await User.select(User.id, User.username, User.display_name)
            .where(
                (User.is_active == True)  # noqa: E712 - SQL
                & User.username.is_not_null()
                & (User.username.like(f"{pattern}%") | User.display_name.ilike(f"{pattern}%"))
            )
            .order_by(User.username)
            .limit(MENTION_LIMIT * 3)
        )
        for row in rows:
            if category is not None and thread_row is not None:
                other = await load_actor(row["id"])
                if other is None or not policy.can_read_forum_thread(other, category, thread_row):
                    continue
            users.append(row)
            if len(users) >= MENTION_LIMIT:
                break
    return page(request, "forum/_mentions.html", {"users": users, "q": q})


async def _flush_views(request: Request[Any, Any, Any]) -> None:
    await views.flush_if_due()


router = Router(
    path="/",
    include_in_schema=False,
    route_handlers=[
        community_home,
        category_page,
        tag_page,
        thread_page,
        jump,
        reply,
        reply_form,
        preview,
        edit_form,
        edit_post,
        delete_post,
        history,
        accept,
        unaccept,
        toggle_reaction,
        toggle_bookmark,
        read,
        bookmarks_page,
        new_thread_form,
        new_thread,
        similar,
        mention_candidates,
    ],
    after_response=_flush_views,
)
