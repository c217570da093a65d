"""The demo Help Center content under server/kb/demo/ is well-formed.

These files are hand-written data that the knowledge base loads at seed time: a typo in front
matter or a link to a renamed article would only show up as a broken demo, so check them here.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from server.kb.fields import MAX_TITLE_CHARS, clean_labels

DEMO = Path(__file__).resolve().parent.parent / "server" / "kb" / "demo"
ARTICLES = DEMO / "articles"

VISIBILITIES = {"public", "signed_in", "members", "internal"}
CATEGORY_KEYS = {"slug", "name_en", "name_ja", "description_en", "description_ja", "position", "visibility"}
SECTION_KEYS = CATEGORY_KEYS - {"visibility"}
FRONT_MATTER_REQUIRED = {"title", "section", "tags", "position"}
FRONT_MATTER_ALLOWED = FRONT_MATTER_REQUIRED | {"visibility", "tiers"}

FILE_NAME = re.compile(r"^(?P<nn>\d{2})-(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)\.(?P<lang>en|ja)\.md$")
FENCED_CODE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]+`")
HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|<!--")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]*)\)")
LINK = re.compile(r"(?<!!)\[[^\]]+\]\(([^)\s]+)\)")
ARTICLE_LINK = re.compile(r"^/help/articles/(?P<slug>[a-z0-9-]+)(?:#[a-z0-9-]+)?$")
EN_WORD = re.compile(r"[A-Za-z0-9]+(?:['’.-][A-Za-z0-9]+)*")
KANA = re.compile(r"[\u3040-\u30ff]")
# A Japanese body is measured in characters, with a run of Latin letters or digits counted as one.
JA_UNIT = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff01-\uff9f]|[A-Za-z0-9]+")


@dataclass(frozen=True)
class Article:
    path: Path
    nn: str
    slug: str
    lang: str
    meta: dict
    body: str


def split_front_matter(text: str) -> tuple[dict, str]:
    lines = text.split("\n")
    assert lines[0] == "+++", "file must start with a +++ line"
    end = lines.index("+++", 1)
    return tomllib.loads("\n".join(lines[1:end])), "\n".join(lines[end + 1 :])


@cache
def structure() -> dict:
    return tomllib.loads((DEMO / "structure.toml").read_text(encoding="utf-8"))


@cache
def sections() -> dict[str, dict]:
    """Section slug -> section, with its category under the key `category`."""
    found = {}
    for category in structure()["categories"]:
        for section in category["sections"]:
            found[section["slug"]] = {**section, "category": category}
    return found


@cache
def articles() -> tuple[Article, ...]:
    found = []
    for path in sorted(ARTICLES.iterdir()):
        match = FILE_NAME.match(path.name)
        assert match, f"unexpected file name {path.name}"
        meta, body = split_front_matter(path.read_text(encoding="utf-8"))
        found.append(Article(path, match["nn"], match["slug"], match["lang"], meta, body))
    return tuple(found)


def by_lang(lang: str) -> dict[str, Article]:
    return {a.slug: a for a in articles() if a.lang == lang}


def prose(body: str) -> str:
    """The body without code, which is neither counted nor checked for markup."""
    return INLINE_CODE.sub(" ", FENCED_CODE.sub(" ", body))


def effective_visibility(article: Article) -> str:
    return article.meta.get("visibility") or sections()[article.meta["section"]]["category"]["visibility"]


def test_structure_has_categories_with_sections() -> None:
    categories = structure()["categories"]
    assert 5 <= len(categories) <= 7
    slugs = Counter(c["slug"] for c in categories) + Counter(s for s in sections())
    assert max(slugs.values()) == 1, "category and section slugs are unique"
    for category in categories:
        assert set(category) - {"sections"} == CATEGORY_KEYS, category["slug"]
        assert category["visibility"] in VISIBILITIES
        assert 2 <= len(category["sections"]) <= 4, category["slug"]
        for section in category["sections"]:
            assert set(section) == SECTION_KEYS, section["slug"]
        assert sorted(s["position"] for s in category["sections"]) == list(range(1, len(category["sections"]) + 1))
    assert sorted(c["position"] for c in categories) == list(range(1, len(categories) + 1))
    visibilities = Counter(c["visibility"] for c in categories)
    assert visibilities["signed_in"] == 1 and visibilities["public"] == len(categories) - 1


def test_every_article_has_its_twin_and_a_number_of_its_own() -> None:
    en, ja = by_lang("en"), by_lang("ja")
    assert len(en) >= 44
    assert set(en) == set(ja)
    for slug, article in en.items():
        assert ja[slug].nn == article.nn, slug
    numbers = Counter(a.nn for a in en.values())
    assert max(numbers.values()) == 1, "each NN prefix belongs to one article"


def front_matter_problems(article: Article) -> list[str]:
    meta = article.meta
    problems = []
    if not FRONT_MATTER_REQUIRED <= set(meta) <= FRONT_MATTER_ALLOWED:
        problems.append(f"keys {sorted(meta)}")
    if not (isinstance(meta.get("title"), str) and meta["title"].strip()):
        problems.append("title")
    if meta.get("section") not in sections():
        problems.append(f"unknown section {meta.get('section')!r}")
    if meta.get("visibility", "public") not in VISIBILITIES:
        problems.append(f"visibility {meta['visibility']!r}")
    if "tiers" in meta and (meta.get("visibility") != "members" or not meta["tiers"]):
        problems.append("tiers only narrow a members article")
    if len(meta.get("title") or "") > MAX_TITLE_CHARS:
        problems.append("title too long")
    tags = meta.get("tags")
    if not (isinstance(tags, list) and tags and all(isinstance(t, str) and t.strip() for t in tags)):
        problems.append("tags must be a non-empty list of strings")
    position = meta.get("position")
    if not (isinstance(position, int) and not isinstance(position, bool) and position >= 1):
        problems.append(f"position {position!r}")
    return problems


def test_front_matter() -> None:
    problems = {a.path.name: p for a in articles() if (p := front_matter_problems(a))}
    assert not problems


def test_twins_agree_on_placement_and_links() -> None:
    ja = by_lang("ja")
    for slug, en in by_lang("en").items():
        for key in ("section", "visibility", "tiers", "position"):
            assert en.meta.get(key) == ja[slug].meta.get(key), (slug, key)
        assert sorted(LINK.findall(en.body)) == sorted(LINK.findall(ja[slug].body)), slug


def test_tags_of_both_languages_fit_the_knowledge_base() -> None:
    """The loader stores the English and Japanese tags together, cleaned by the knowledge base's rules."""
    ja = by_lang("ja")
    for slug, en in by_lang("en").items():
        errors: dict[str, str] = {}
        clean_labels(en.meta["tags"] + ja[slug].meta["tags"], "tags", errors)
        assert not errors, slug
        tiers = en.meta.get("tiers", [])
        assert clean_labels(tiers, "tiers", errors) == tiers and not errors, slug


def test_positions_are_unique_within_each_section() -> None:
    placed = Counter((a.meta["section"], a.meta["position"]) for a in by_lang("en").values())
    assert max(placed.values()) == 1
    assert set(sections()) == {a.meta["section"] for a in by_lang("en").values()}, "no empty section"


def test_audiences_beyond_public_are_represented() -> None:
    en = by_lang("en").values()
    overrides = Counter(a.meta["visibility"] for a in en if "visibility" in a.meta)
    assert overrides["signed_in"] >= 2
    assert overrides["members"] >= 2
    assert overrides["internal"] >= 2
    assert Counter(map(effective_visibility, en))["public"] >= len(en) // 2


def test_links_never_lead_readers_to_articles_hidden_from_them() -> None:
    """A reader may be asked to sign in, but never sent to a tier-only or staff-only article."""
    restriction = {"public": 0, "signed_in": 1, "members": 2, "internal": 3}
    articles_by_slug = by_lang("en")
    leaks = []
    for article in articles_by_slug.values():
        allowed = max(restriction[effective_visibility(article)], restriction["signed_in"])
        for target in LINK.findall(article.body):
            linked = articles_by_slug[ARTICLE_LINK.match(target)["slug"]]
            if restriction[effective_visibility(linked)] > allowed:
                leaks.append((article.slug, linked.slug))
    assert not leaks


def body_problems(article: Article) -> list[str]:
    body = article.body
    text = prose(body)
    problems = []
    if article.lang == "en":
        words = len(EN_WORD.findall(text))
        if not 120 <= words <= 350:
            problems.append(f"{words} words, expected 120-350")
    else:
        chars = len(JA_UNIT.findall(text))
        if not 250 <= chars <= 900:
            problems.append(f"{chars} characters, expected 250-900")
        if len(KANA.findall(text)) <= 100:
            problems.append("not written in Japanese")
        if "ます" not in text and "です" not in text:
            problems.append("not in polite style")
    if not re.search(r"^## \S", body, re.MULTILINE):
        problems.append("no ## heading for the table of contents")
    if re.search(r"^# ", body, re.MULTILINE):
        problems.append("a # heading; the title comes from front matter")
    if body.count("```") % 2:
        problems.append("unclosed code fence")
    if tag := HTML_TAG.search(text):
        problems.append(f"raw HTML {tag.group()!r}")
    if IMAGE.search(body):
        problems.append("an image")
    if "](http" in body or "<http" in text:
        problems.append("a remote link in prose")
    return problems


def test_body_shape() -> None:
    problems = {a.path.name: p for a in articles() if (p := body_problems(a))}
    assert not problems


def link_problems(article: Article) -> list[str]:
    slugs = set(by_lang(article.lang))
    problems = []
    for target in LINK.findall(article.body):
        match = ARTICLE_LINK.match(target)
        if not match:
            problems.append(f"not a relative help-center link: {target}")
        elif match["slug"] not in slugs:
            problems.append(f"no article {match['slug']!r}")
        elif match["slug"] == article.slug:
            problems.append("links to itself")
    return problems


def test_links_point_to_existing_articles() -> None:
    problems = {a.path.name: p for a in articles() if (p := link_problems(a))}
    assert not problems


def test_checks_catch_broken_articles() -> None:
    """The checks above fail on the mistakes they are meant to catch."""
    good = by_lang("en")["webhooks"]
    meta = {"title": "", "section": "nowhere", "tags": [], "position": 0, "colour": "red", "tiers": ["gold"]}
    body = "# Title\n\nToo short <div>x</div> ![x](https://img.example/a.png) [a](/help/articles/nope) [b](https://x.example)"
    broken = Article(good.path, good.nn, good.slug, "en", meta, body)
    assert len(front_matter_problems(broken)) == 6
    found = " | ".join(body_problems(broken))
    for expected in ("words, expected", "no ## heading", "a # heading", "raw HTML", "an image", "remote link"):
        assert expected in found
    assert len(link_problems(broken)) == 2
    japanese = Article(good.path, good.nn, good.slug, "ja", good.meta, by_lang("en")["webhooks"].body)
    assert "not written in Japanese" in body_problems(japanese)


def test_corpus_uses_rich_markdown() -> None:
    en = by_lang("en").values()
    assert sum("```" in a.body for a in en) >= 8
    assert sum(bool(re.search(r"^\|.*\|$", a.body, re.MULTILINE)) for a in en) >= 8
    assert sum(bool(re.search(r"^1\. ", a.body, re.MULTILINE)) for a in en) >= 20
    assert sum("curl " in a.body for a in en) >= 4
    assert sum(bool(LINK.search(a.body)) for a in en) >= 30
