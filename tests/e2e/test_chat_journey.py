"""The chat journey in real browsers: a customer's product page (served from another origin)
carries the one-line widget; the visitor opens it, gives a name and email and asks; an agent,
whose queue page shows the chat arrive without a reload, takes it and answers; the answer
appears in the widget, the visitor's message turns "Seen", the visitor's reply reaches the
agent live; the agent ends the chat and its ticket (there from the start) holds the transcript."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from server.policy import Actor
from tests.conftest import _free_port
from tests.e2e.conftest import BrowserPage, ConsoleProblems, LiveServer
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.browser

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Lumenfold Pro — pricing</title></head>
<body><h1>Lumenfold Pro</h1><p>Our product page.</p>
<script src="{base}/static/js/chat-widget.js" data-kizuna-chat async></script>
</body></html>"""


class _HostSite:
    """A customer's own site on another origin: one page with the widget's script tag."""

    app_base = ""

    def __init__(self) -> None:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                body = HOST_PAGE.format(base=site.app_base).encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module", autouse=True)
def host_site() -> Iterator[_HostSite]:
    """Started before the app (autouse runs first), whose CHAT_ALLOWED_ORIGINS names it."""
    site = _HostSite()
    before = os.environ.get("CHAT_ALLOWED_ORIGINS")
    os.environ["CHAT_ALLOWED_ORIGINS"] = site.origin
    yield site
    site.server.shutdown()
    if before is None:
        os.environ.pop("CHAT_ALLOWED_ORIGINS", None)
    else:
        os.environ["CHAT_ALLOWED_ORIGINS"] = before


@dataclass
class Scene:
    agent: Actor


@pytest.fixture
async def scene() -> Scene:
    from server.channels.chat import services

    agent = await make_user("agent", name="Ada Journey", email="ada.chat@example.test")
    await services.set_availability(agent, "online", 3)
    return Scene(agent)


def test_a_visitor_chats_from_the_widget_and_an_agent_answers(
    scene: Scene,
    live_server: LiveServer,
    host_site: _HostSite,
    browser_page: BrowserPage,
) -> None:
    from playwright.sync_api import expect

    base = live_server.base_url
    host_site.app_base = base
    visitor = browser_page.page
    agent_context = visitor.context.browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})  # type: ignore[union-attr]
    agent = agent_context.new_page()
    agent.set_default_timeout(15_000)
    agent_problems = ConsoleProblems()
    agent.on("console", agent_problems.on_console)
    agent.on("pageerror", agent_problems.on_page_error)
    try:
        # The agent's queue is open before anyone asks.
        agent.goto(f"{base}/login")
        main = agent.locator("main")
        main.get_by_label("Email").fill(scene.agent.email)
        main.get_by_label("Password").fill(PASSWORD)
        main.get_by_role("button", name="Sign in").click()
        agent.wait_for_url(f"{base}/")
        agent.goto(f"{base}/desk/chats")
        expect(agent.locator("#chat-waiting")).to_contain_text("No chats are waiting.")
        agent.evaluate("window.kzSamePage = true")
        agent.wait_for_timeout(1000)  # the queue page's socket connects

        # The visitor opens the widget on the product page and starts a chat.
        visitor.goto(host_site.origin + "/")
        launcher = visitor.locator("[data-kizuna-chat-launcher]")
        expect(launcher).to_have_text("Chat with us")
        launcher.click()
        chat = visitor.frame_locator("iframe[data-kizuna-chat-frame]")
        chat.get_by_label("Your name").fill("Vera Widget")
        chat.get_by_label("Your email").fill("vera.widget@example.test")
        chat.get_by_label("Your question").fill("Can I export my timeline as PDF?")
        chat.get_by_role("button", name="Start chatting").click()
        expect(chat.locator(".chat-status")).to_contain_text("Waiting for an agent")
        expect(chat.locator(".chat-msg-mine")).to_contain_text("Can I export my timeline as PDF?")
        frame = visitor.frame(url=lambda url: "/chat/s/" in url)
        assert frame is not None
        session_id = int(frame.url.split("/chat/s/")[1].split("?")[0])
        visitor.wait_for_timeout(1000)  # the chat page's socket connects

        # The chat arrives in the agent's queue without a reload; the agent takes it.
        waiting = agent.locator("#chat-waiting li", has_text="Vera Widget")
        expect(waiting).to_be_visible(timeout=10_000)
        assert agent.evaluate("window.kzSamePage") is True
        waiting.get_by_role("button", name="Take").click()
        agent.wait_for_url(f"{base}/desk/chats/{session_id}")
        expect(agent.locator(f"#chat-log-{session_id}")).to_contain_text("Can I export my timeline as PDF?")

        # The visitor learns who answers, and that the agent has seen the question.
        expect(chat.locator(".chat-status")).to_contain_text("You are chatting with Ada Journey", timeout=10_000)
        expect(chat.locator(".chat-msg-mine .chat-state")).to_have_text("Seen", timeout=10_000)

        # The agent types (the visitor sees it) and answers.
        composer = agent.get_by_label("Your message")
        composer.press_sequentially("Yes: ", delay=20)
        expect(chat.locator(".chat-typing")).to_contain_text("Ada Journey is typing", timeout=10_000)
        composer.press_sequentially("open the timeline and choose Export, then PDF.", delay=5)
        composer.press("Enter")
        answer = chat.locator(".chat-msg-agent", has_text="choose Export, then PDF")
        expect(answer).to_be_visible(timeout=10_000)

        # The visitor replies; the agent sees it live.
        reply = chat.get_by_label("Your message")
        reply.fill("Perfect, thanks!")
        chat.get_by_role("button", name="Send", exact=True).click()
        expect(chat.locator(".chat-msg-mine", has_text="Perfect, thanks!").locator(".chat-state")).to_have_text(
            "Seen", timeout=10_000
        )
        expect(agent.locator(".chat-msg-customer", has_text="Perfect, thanks!")).to_be_visible(timeout=10_000)
        expect(chat.locator(".chat-msg")).to_have_count(4)  # question, "joined", answer, reply: once each

        # The agent ends the chat; the widget says so and offers a new one.
        agent.get_by_role("button", name="End the chat").click()
        expect(chat.locator(".chat-status")).to_contain_text("This chat has ended.", timeout=10_000)
        expect(chat.get_by_role("link", name="Start a new chat")).to_be_visible()

        # The ticket (there from the start) now holds the transcript: the worker adds it.
        ticket_href = agent.locator("main a[href^='/desk/tickets/']").first.get_attribute("href")
        assert ticket_href
        deadline = time.monotonic() + 20
        while True:
            agent.goto(base + ticket_href)
            found = agent.locator(".ticket-message-public").all_inner_texts()
            if len(found) == 2:
                break
            assert time.monotonic() < deadline, f"ticket messages: {found}\n{live_server.log_tails()}"
            agent.wait_for_timeout(500)
        assert "Can I export my timeline as PDF?" in found[0]
        transcript = found[1]
        assert "Chat transcript" in transcript
        answer_at = transcript.index("choose Export, then PDF.")
        assert answer_at < transcript.index("Perfect, thanks!")
        assert browser_page.problems.messages == [], browser_page.problems.messages
        assert agent_problems.messages == [], agent_problems.messages
    except Exception:
        with contextlib.suppress(Exception):
            print(f"\nlive server logs:\n{live_server.log_tails()}")
        raise
    finally:
        agent_context.close()
