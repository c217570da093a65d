"""UI strings: every string in code and templates has a Japanese translation with the same
placeholders, and pages and mail come out in the language the visitor chose.

The messages are extracted here with Babel from the tree as it is, through the same mapping
file as `make i18n`, so a newly wrapped string without a translation fails this suite.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from litestar.testing import AsyncTestClient

from server.i18n import CATALOG_DIR, load_catalog
from server.settings import ROOT
from server.templating import render_text
from tests import factories
from tests.conftest import post_form

MessageId = str | tuple[str, ...]
Key = tuple[MessageId, str | None]  # a msgid and its msgctxt (pgettext), or None

# A printf conversion: `%(name)s`, `%s`, `%d`, `%.2f` or a literal `%%`.
CONVERSION_RE = re.compile(r"%(?:\((?P<name>\w+)\))?[-#0 +]*\d*(?:\.\d+)?(?P<kind>[diouxXeEfFgGcrsa%])")


def _source_directory(path: str) -> bool:
    """Walk only where the mapping looks (not var/, static/ or bench/), skipping dot and _ folders
    as `pybabel extract` does."""
    relative = Path(path).relative_to(ROOT)
    if relative == Path("."):
        return True
    return relative.parts[0] in {"server", "templates"} and not relative.name.startswith((".", "_"))


@cache
def extracted() -> dict[Key, list[str]]:
    """Every msgid (with its msgctxt) in server/ and templates/, with where it is used."""
    with (CATALOG_DIR / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[Key, list[str]] = defaultdict(list)
    walk = extract_from_dir(str(ROOT), method_map, options_map, directory_filter=_source_directory)
    for filename, lineno, message, _comments, context in walk:
        key = tuple(message) if isinstance(message, list | tuple) else message
        found[(key, context)].append(f"{filename}:{lineno}")
    return dict(found)


@cache
def ja_catalog() -> Catalog:
    return load_catalog("ja")


def _forms(value: MessageId) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def conversions(text: str) -> list[str]:
    """The printf conversions in `text`, sorted, each written as `%(name)s` or `%s`."""
    return sorted(f"%({m['name']}){m['kind']}" if m["name"] else f"%{m['kind']}" for m in CONVERSION_RE.finditer(text))


def stray_percent(text: str) -> bool:
    """A `%` that is not part of a conversion would make `text % params` fail at render time."""
    return "%" in CONVERSION_RE.sub("", text)


def test_extraction_finds_strings_from_code_and_templates() -> None:
    places = [place for places in extracted().values() for place in places]
    assert any(p.startswith("server/") for p in places)
    assert any(p.startswith("templates/") and p.split(":")[0].endswith(".html") for p in places)
    assert any(p.startswith("templates/mail/") and p.split(":")[0].endswith(".txt") for p in places)
    assert ("Help Center", None) in extracted()
    assert ("Email", "channel") in extracted()  # pgettext is a keyword too


def test_every_extracted_string_has_a_japanese_translation() -> None:
    catalog = ja_catalog()
    missing = []
    for (msgid, context), places in extracted().items():
        entry = catalog.get(msgid, context=context)
        forms = _forms(entry.string) if entry is not None else []
        if entry is None or entry.fuzzy or not forms or not all(form.strip() for form in forms):
            missing.append(f"{msgid!r}{f' (context {context!r})' if context else ''} ({', '.join(places)})")
    assert not missing, "Translate these in server/locales/ja/LC_MESSAGES/messages.po (run `make i18n`):\n" + "\n".join(
        missing
    )


def test_plural_strings_are_plural_entries_in_the_catalog() -> None:
    catalog = ja_catalog()
    for msgid, context in extracted():
        if isinstance(msgid, tuple):
            entry = catalog.get(msgid, context=context)
            assert entry is not None and entry.pluralizable, f"{msgid!r} is a plural message: re-run `make i18n`"


def test_translations_keep_the_placeholders_of_their_msgid() -> None:
    wrong = []
    for entry in ja_catalog():
        if not entry.id or not entry.string:
            continue
        source = _forms(entry.id)
        expected = sorted(set().union(*(conversions(text) for text in source)))
        for form in _forms(entry.string):
            if sorted(set(conversions(form))) != expected or stray_percent(form):
                wrong.append(f"{entry.id!r}: {form!r} should use exactly {expected}")
    assert not wrong, "\n".join(wrong)


def test_placeholder_check_catches_a_lost_or_renamed_placeholder() -> None:
    assert conversions("Wait %(seconds)s seconds") == conversions("%(seconds)s秒お待ちください")
    assert conversions("Wait %(seconds)s seconds") != conversions("%(secs)s秒お待ちください")
    assert conversions("Wait %(seconds)s seconds") != conversions("お待ちください")
    assert stray_percent("100% 完了") and not stray_percent("100%% 完了")


# Pages -------------------------------------------------------------------------------------


async def test_accept_language_ja_gives_japanese_navigation(client: AsyncTestClient) -> None:
    response = await client.get("/", headers={"Accept-Language": "ja,en;q=0.5"})
    assert response.status_code == 200
    assert '<html lang="ja">' in response.text
    for label in ("ヘルプセンター", "コミュニティ", "ガイド", "特典", "お問い合わせ履歴", "ログイン"):
        assert label in response.text
    assert "Help Center" not in response.text


async def test_accept_language_en_or_unknown_gives_english(client: AsyncTestClient) -> None:
    for header in ("en-US,en;q=0.9", "fr-FR"):
        response = await client.get("/", headers={"Accept-Language": header})
        assert '<html lang="en">' in response.text
        assert "Help Center" in response.text and "ヘルプセンター" not in response.text


async def test_footer_switcher_sets_cookie_and_pages_follow_it(client: AsyncTestClient) -> None:
    response = await post_form(client, "/locale", {"locale": "ja", "next": "/login"}, page="/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert response.cookies.get("kz_locale") == "ja"

    login_page = await client.get("/login")
    assert '<html lang="ja">' in login_page.text
    assert "パスワードをお忘れですか？" in login_page.text
    home = await client.get("/")
    assert "どのようなことでお困りですか？" in home.text
    assert '<option value="ja" selected>' in home.text

    response = await post_form(client, "/locale", {"locale": "en", "next": "/"}, page="/", follow_redirects=False)
    assert response.status_code == 303
    assert response.cookies.get("kz_locale") == "en"
    home = await client.get("/")
    assert "How can we help?" in home.text and "どのようなことでお困りですか？" not in home.text


async def test_switcher_rejects_an_unknown_locale(client: AsyncTestClient) -> None:
    response = await post_form(client, "/locale", {"locale": "xx", "next": "/"}, page="/")
    assert response.status_code == 422
    assert "kz_locale" not in response.cookies


async def test_profile_locale_wins_over_cookie_and_header(client: AsyncTestClient) -> None:
    actor = await factories.make_user(locale="ja")
    await factories.login(client, actor.email)
    client.cookies.set("kz_locale", "en")
    response = await client.get("/", headers={"Accept-Language": "en"})
    assert '<html lang="ja">' in response.text
    assert "ログアウト" in response.text and "Sign out" not in response.text

    guides = await client.get("/guides")
    assert "このページは現在準備中です。" in guides.text


async def test_error_pages_and_policy_messages_are_translated(client: AsyncTestClient) -> None:
    missing = await client.get("/no/such/page", headers={"Accept-Language": "ja"})
    assert missing.status_code == 404
    assert '<html lang="ja">' in missing.text and "ページが見つかりません" in missing.text
    client.cookies.set("kz_locale", "ja")
    wrong_method = await client.delete("/help")
    assert wrong_method.status_code == 405 and "許可されていない操作です" in wrong_method.text
    assert "GET" in wrong_method.headers["allow"]  # the page keeps the exception's headers
    client.cookies.delete("kz_locale")

    actor = await factories.make_user(locale="ja")
    await factories.login(client, actor.email)
    forbidden = await client.get("/desk")
    assert forbidden.status_code == 403
    assert "この操作を行う権限がありません。" in forbidden.text


async def test_unreadable_query_gives_a_translated_400_page(client: AsyncTestClient) -> None:
    admin = await factories.make_user("admin", locale="ja")
    await factories.login(client, admin.email)
    response = await client.get("/admin/users?page_no=abc")
    assert response.status_code == 400
    assert "アドレスまたはフォームの一部を読み取れませんでした" in response.text
    assert "Validation failed" not in response.text


async def test_plural_message_renders_in_both_languages(client: AsyncTestClient) -> None:
    admin = await factories.make_user("admin", locale="en")
    await factories.login(client, admin.email)
    english = await client.get("/admin")
    assert "0 jobs gave up after every retry." in english.text
    await post_form(client, "/locale", {"locale": "ja", "next": "/admin"}, page="/admin")
    japanese = await client.get("/admin")
    assert "0件のジョブが" in japanese.text


# Mail --------------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["mail/verify_email.txt", "mail/reset_password.txt"])
def test_mail_renders_in_the_recipients_language(template: str) -> None:
    subject_ja, body_ja = render_text(template, {"url": "https://example.test/x"}, locale="ja")
    subject_en, body_en = render_text(template, {"url": "https://example.test/x"}, locale="en")
    assert subject_ja.startswith("【Kizuna】") and subject_ja != subject_en
    assert "こんにちは。" in body_ja and "Lumenfoldサポート" in body_ja
    assert "https://example.test/x" in body_ja
    assert "Hello," in body_en and "こんにちは" not in body_en


def test_verify_email_mail_is_japanese() -> None:
    subject, body = render_text("mail/verify_email.txt", {"url": "x"}, locale="ja")
    assert subject == "【Kizuna】メールアドレス確認のお願い"
    assert "次のリンクを開いて、メールアドレスの確認を完了してください。" in body
    assert "有効期限は3日間です" in body


def test_a_word_translated_by_its_context() -> None:
    from server import i18n
    from server.desk import fields

    token = i18n.set_locale("ja")
    try:
        assert fields.channel_labels()["email"] == "メール"  # the channel a ticket came in by
        assert i18n.gettext("Email") == "メールアドレス"  # the field on a form
    finally:
        i18n._current_locale.reset(token)
    assert fields.channel_labels()["email"] == "Email"


def test_templates_translate_by_context_too() -> None:
    from server import i18n
    from server.templating import environment

    token = i18n.set_locale("ja")
    try:
        template = environment().from_string('{{ pgettext("thread", "New") }}|{{ _("New") }}')
        assert template.render() == "新着|新規"  # a thread's badge, a ticket's status
    finally:
        i18n._current_locale.reset(token)
