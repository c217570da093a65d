"""Demo desk: groups, custom fields, macros and a few hundred tickets in English and Japanese
across every status, so the desk looks like a working day on the first `make run`.

Made from hand-written templates with a fixed random seed, through the same services as the
UI; afterwards the timestamps are spread over the past weeks. Idempotent: each part is added
only when missing.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from server.accounts.auth import load_actor, utcnow
from server.accounts.tables import User
from server.db import atomic
from server.desk import csat, services, sla, sla_demo
from server.desk.tables import DeskField, DeskGroup, DeskMacro, Ticket, TicketMessage
from server.policy import Actor

SYSTEM = Actor(roles=frozenset({"admin"}))
SEED = 20261204
TICKETS = 300
DEMO_REF = "demo:"

GROUPS = [
    # name, description, member emails (the first is the lead)
    (
        "Tier 1 Support",
        "First line: questions, how-tos, accounts.",
        ["agent@lumenfold.example", "admin@lumenfold.example"],
    ),
    ("Billing 請求", "Invoices, plans, refunds.", ["admin@lumenfold.example"]),
    ("Engineering escalations", "Bugs and incidents confirmed by Tier 1.", ["agent@lumenfold.example"]),
]

FIELDS = [
    {
        "key": "product_area",
        "label_en": "Product area",
        "label_ja": "製品エリア",
        "field_type": "select",
        "options": ["Boards", "Timeline", "Reports", "Integrations", "Billing", "Mobile app"],
        "customer_editable": True,
        "position": 1,
    },
    {
        "key": "app_version",
        "label_en": "App version",
        "label_ja": "アプリのバージョン",
        "field_type": "text",
        "customer_editable": True,
        "position": 2,
    },
    {
        "key": "affected_users",
        "label_en": "Affected users",
        "label_ja": "影響ユーザー数",
        "field_type": "number",
        "position": 3,
    },
    {
        "key": "reproduced",
        "label_en": "Reproduced by us",
        "label_ja": "社内で再現済み",
        "field_type": "checkbox",
        "position": 4,
    },
    {
        "key": "due_date",
        "label_en": "Customer deadline",
        "label_ja": "お客様の期限",
        "field_type": "date",
        "position": 5,
    },
]

MACROS = [
    (
        "Ask for steps to reproduce",
        "Hi {{requester.first_name}},\n\nThanks for reporting this. Could you send the exact "
        "steps that lead to the problem, and a screenshot if you can?\n\nBest regards,\n{{agent.name}}",
        {"status": "pending", "add_tags": ["needs-info"]},
    ),
    (
        "再現手順のお願い",
        "{{requester.name}} 様\n\nお問い合わせありがとうございます。問題が起きるまでの操作手順と、"
        "可能であればスクリーンショットをお送りいただけますでしょうか。\n\nよろしくお願いいたします。\n{{agent.name}}",
        {"status": "pending", "add_tags": ["needs-info"]},
    ),
    (
        "Solved: thanks",
        "Hi {{requester.first_name}},\n\nGlad we could sort this out. If anything comes back, just "
        "reply to this ticket.\n\n{{agent.name}}",
        {"status": "solved"},
    ),
    (
        "Escalate to engineering",
        "Escalating to engineering with the details collected so far.",
        {"priority": "high", "ticket_type": "incident", "add_tags": ["escalated"]},
    ),
]

EN = [
    (
        "Export to CSV stops at 10,000 rows",
        "When I export the project board to CSV, the file ends after 10,000 rows. We have about 14,000 cards.",
        "Reports",
    ),
    (
        "Timeline view does not load",
        "The timeline spinner never stops since this morning. Boards work fine.",
        "Timeline",
    ),
    (
        "How do I move a card to another board?",
        "I want to move several cards from the Marketing board to Sales. Is there a bulk move?",
        "Boards",
    ),
    (
        "Invoice shows the wrong company name",
        "Our latest invoice still has our old company name. Can you correct it and resend?",
        "Billing",
    ),
    (
        "Slack notifications stopped",
        "We no longer get Slack messages when a card is assigned. The integration page says connected.",
        "Integrations",
    ),
    ("Mobile app logs me out every day", "On iOS the app asks me to sign in again every morning.", "Mobile app"),
    (
        "Can we get a refund for unused seats?",
        "We reduced the team from 40 to 25 people mid-year. Can the unused seats be refunded?",
        "Billing",
    ),
    (
        "Two-factor codes are rejected",
        "My authenticator codes are always rejected as invalid. My phone time is correct.",
        "Boards",
    ),
    (
        "Report totals do not match the board",
        "The weekly report shows 132 done cards but the board says 128.",
        "Reports",
    ),
    ("Request: dark mode for the web app", "Our designers would love a dark theme. Is it on the roadmap?", "Boards"),
    (
        "Jira sync duplicates issues",
        "Every sync creates a second copy of some Jira issues on our board.",
        "Integrations",
    ),
    (
        "Cannot invite guests from another domain",
        "Inviting a contractor with a gmail address fails with an error.",
        "Boards",
    ),
    (
        "Upgrade to Business plan",
        "We would like to move from Starter to Business this month. What happens to our billing date?",
        "Billing",
    ),
    ("Attachments fail to upload over 5 MB", "Uploading a 7 MB PDF to a card fails silently.", "Boards"),
    ("API rate limit too low for our sync", "Our nightly sync hits HTTP 429 after a few minutes.", "Integrations"),
]

JA = [
    (
        "CSVエクスポートが途中で止まります",
        "プロジェクトボードをCSVに書き出すと、1万行で切れてしまいます。カードは約1万4千件あります。",
        "Reports",
    ),
    (
        "タイムラインが表示されません",
        "今朝からタイムライン画面の読み込みが終わりません。ボードは正常に使えます。",
        "Timeline",
    ),
    ("請求書の会社名を変更したい", "社名変更に伴い、請求書の宛名を新しい会社名にしていただけますか。", "Billing"),
    (
        "Slack通知が届かなくなりました",
        "カードが割り当てられてもSlackに通知が来ません。連携画面では接続済みと表示されています。",
        "Integrations",
    ),
    ("スマホアプリで毎日ログアウトされる", "Androidアプリで毎朝ログインを求められます。", "Mobile app"),
    ("二段階認証のコードが通りません", "認証アプリのコードを入力しても無効と表示されます。", "Boards"),
    ("レポートの集計がボードと合いません", "週次レポートの完了件数がボードの件数と一致しません。", "Reports"),
    ("ダークモードの予定はありますか", "デザインチームからダークテーマの要望が出ています。", "Boards"),
    ("Jira連携で課題が重複します", "同期のたびに一部のJira課題が二重に作成されます。", "Integrations"),
    ("ゲストを招待できません", "社外の協力会社の方を招待するとエラーになります。", "Boards"),
    (
        "Businessプランへの変更について",
        "今月中にStarterからBusinessへ変更したいです。請求日はどうなりますか。",
        "Billing",
    ),
    ("5MBを超える添付ファイルがアップロードできない", "7MBのPDFをカードに添付しようとすると失敗します。", "Boards"),
]

AGENT_REPLIES_EN = [
    "Thanks for the details! I can reproduce this and have passed it to our engineers.",
    "Could you tell me which browser and version you are using?",
    "This is fixed in today's release. Could you try again and let me know?",
    "I have updated your account. You should see the change within a few minutes.",
]
AGENT_REPLIES_JA = [
    "詳細をありがとうございます。こちらでも再現できましたので、開発チームに共有しました。",
    "ご利用のブラウザとバージョンを教えていただけますか。",
    "本日のリリースで修正されました。お手数ですが、もう一度お試しください。",
    "アカウントの設定を更新しました。数分以内に反映されます。",
]
CUSTOMER_REPLIES_EN = [
    "Thanks, that worked!",
    "It still happens, unfortunately.",
    "Here are the steps: open the board, click Export, choose CSV.",
]
CUSTOMER_REPLIES_JA = [
    "ありがとうございます、解決しました。",
    "残念ながら、まだ発生します。",
    "手順: ボードを開き、エクスポートからCSVを選びます。",
]
NOTES = [
    "Customer is on an old app version; ask them to update.",
    "Known issue ENG-4821, fix planned next sprint.",
    "お客様は重要顧客です。丁寧に対応をお願いします。",
    "Checked logs: timeouts from the reporting service.",
]
STATUS_WEIGHTS = [("new", 15), ("open", 25), ("pending", 15), ("on_hold", 5), ("solved", 20), ("closed", 20)]
PRIORITY_WEIGHTS = [("low", 20), ("normal", 55), ("high", 20), ("urgent", 5)]
CUSTOMER_EMAILS = [
    "orgadmin@aozora-logistics.example",
    "customer@aozora-logistics.example",
    "customer@pinecrest-dental.example",
    "customer@kumo-games.example",
    "customer@harborlight.example",
]


async def _actor(email: str) -> Actor | None:
    row = await User.select(User.id).where(User.email == email).first()
    return await load_actor(row["id"]) if row else None


async def _groups() -> dict[str, int]:
    ids = {}
    for name, description, emails in GROUPS:
        row = await DeskGroup.select(DeskGroup.id).where(DeskGroup.name == name).first()
        if row is None:
            members = [a.user_id for e in emails if (a := await _actor(e)) and a.user_id]
            ids[name] = await services.save_group(
                SYSTEM, None, name, description, members[0] if members else None, members
            )
        else:
            ids[name] = row["id"]
    return ids


async def _fields() -> None:
    for data in FIELDS:
        if not await DeskField.exists().where(DeskField.key == data["key"]):
            await services.save_field(SYSTEM, None, {**data, "active": True})


async def _macros() -> None:
    for name, body, actions in MACROS:
        if not await DeskMacro.exists().where(DeskMacro.name == name):
            await services.save_macro(SYSTEM, None, {"name": name, "body_md": body, "actions": actions})


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _w in weighted], weights=[w for _v, w in weighted])[0]


async def _tickets(groups: dict[str, int]) -> int:
    if await Ticket.exists().where(Ticket.channel_ref.like(f"{DEMO_REF}%")):
        return 0
    customers = [a for e in CUSTOMER_EMAILS if (a := await _actor(e))]
    agents = [a for e in ("agent@lumenfold.example", "admin@lumenfold.example") if (a := await _actor(e))]
    if not customers or not agents:
        return 0
    rng = random.Random(SEED)
    now = utcnow()
    group_ids = list(groups.values())
    for start in range(0, TICKETS, 50):
        async with atomic():  # the services' transactions join this one: one commit per 50 tickets
            for n in range(start, min(start + 50, TICKETS)):
                await _ticket(rng, n, customers, agents, group_ids, now)
    return TICKETS


async def _ticket(
    rng: random.Random, n: int, customers: list[Actor], agents: list[Actor], group_ids: list[int], now: Any
) -> None:
    customer = rng.choice(customers)
    japanese = customer.locale == "ja" or rng.random() < 0.25
    subject, body, area = rng.choice(JA if japanese else EN)
    agent = rng.choice(agents)
    status = _pick(rng, STATUS_WEIGHTS)
    ticket_id = await services.open_ticket(
        customer,
        subject,
        body,
        channel=rng.choice(["web", "web", "web", "api"]),
        channel_ref=f"{DEMO_REF}{n}",
        priority=_pick(rng, PRIORITY_WEIGHTS),
        ticket_type=rng.choice(["question", "question", "incident", "problem", "task"]),
        custom_fields={"product_area": area},
        notify=False,
    )
    if status != "new":
        version = 1
        changes: dict[str, Any] = {"assignee": agent.user_id, "team": rng.choice(group_ids)}
        if rng.random() < 0.3:
            changes["tags"] = rng.sample(["vip", "bug", "how-to", "billing", "mobile", "regression"], 2)
        version = (await services.update_ticket(agent, ticket_id, version, changes))["version"]
        replies = AGENT_REPLIES_JA if japanese else AGENT_REPLIES_EN
        await services.add_reply(agent, ticket_id, rng.choice(replies), notify=False)
        if rng.random() < 0.4:
            await services.add_note(agent, ticket_id, rng.choice(NOTES))
        if rng.random() < 0.5:
            answers = CUSTOMER_REPLIES_JA if japanese else CUSTOMER_REPLIES_EN
            await services.add_reply(customer, ticket_id, rng.choice(answers))
        current = await Ticket.select(Ticket.status, Ticket.version).where(Ticket.id == ticket_id).first()
        assert current is not None
        if status != current["status"]:
            target = "solved" if status == "closed" else status
            version = (await services.update_ticket(agent, ticket_id, current["version"], {"status": target}))[
                "version"
            ]
            if status == "closed":
                await services.update_ticket(agent, ticket_id, version, {"status": "closed"})
    await _spread_in_time(rng, ticket_id, now, status)


async def _spread_in_time(rng: random.Random, ticket_id: int, now: Any, status: str) -> None:
    """Move a demo ticket's timestamps into the past: older for solved and closed ones."""
    age_days = rng.uniform(10, 40) if status in ("solved", "closed") else rng.uniform(0.05, 9)
    shift = timedelta(days=age_days)
    async with atomic():
        messages = await TicketMessage.select(TicketMessage.id, TicketMessage.created_at).where(
            TicketMessage.ticket == ticket_id
        )
        for i, message in enumerate(messages):
            moment = message["created_at"] - shift + timedelta(minutes=37 * i)
            await TicketMessage.update({TicketMessage.created_at: moment}).where(TicketMessage.id == message["id"])
        row = await Ticket.select().where(Ticket.id == ticket_id).first()
        assert row is not None
        latest = row["created_at"] - shift + timedelta(minutes=37 * max(len(messages) - 1, 0))
        update: dict[Any, Any] = {Ticket.created_at: row["created_at"] - shift, Ticket.updated_at: latest}
        if row["solved_at"]:
            update[Ticket.solved_at] = latest
        if row["closed_at"]:
            update[Ticket.closed_at] = latest
        if row["first_replied_at"]:
            update[Ticket.first_replied_at] = row["created_at"] - shift + timedelta(minutes=37)
        await Ticket.update(update).where(Ticket.id == ticket_id)


async def load_demo_desk() -> int:
    """Returns how many tickets were added (0 when they exist already)."""
    groups = await _groups()
    await _fields()
    await _macros()
    await sla_demo.load_calendars_and_policies()
    with sla.quiet(), csat.quiet():  # timers and ratings are settled once the tickets are in the past
        added = await _tickets(groups)
    if added:
        await sla_demo.settle_demo_tickets(DEMO_REF)
    return added
