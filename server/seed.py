"""Demo data: Lumenfold, a fictional planning-software company, and its customers.

Idempotent: running it again adds only what is missing. Feature issues add their own demo
content through `seed()` here, calling their services.
"""

from __future__ import annotations

from server import features  # noqa: F401 - every search type and job kind the services enqueue
from server.accounts.services import create_user, save_organisation
from server.accounts.tables import Organisation, User
from server.desk.demo import load_demo_desk
from server.forum.demo_loader import load_demo_forum
from server.kb.demo_loader import load_demo_help_center
from server.policy import Actor

# The seed acts as an administrator with no account: the same services and checks as the UI.
SYSTEM = Actor(roles=frozenset({"admin"}))
DEMO_PASSWORD = "kizuna-demo-2026"  # noqa: S105 - printed at start-up, demo only

ORGANISATIONS = [
    # slug, name, size, industry, plan
    ("aozora-logistics", "Aozora Logistics 青空ロジスティクス", "201-1000", "Logistics", "enterprise"),
    ("pinecrest-dental", "Pinecrest Dental Group", "11-50", "Healthcare", "starter"),
    ("kumo-games", "Kumo Games 雲ゲームス", "51-200", "Gaming", "business"),
    ("harborlight-studio", "Harborlight Studio", "1-10", "Design", "free"),
]

USERS = [
    # email, display name, roles, org slug, org admin, locale
    ("admin@lumenfold.example", "Rina Okafor", ["admin"], None, False, "en"),
    ("agent@lumenfold.example", "佐藤 美咲", ["agent"], None, False, "ja"),
    ("moderator@lumenfold.example", "Tomás Ferreira", ["moderator"], None, False, "en"),
    ("orgadmin@aozora-logistics.example", "山田 健太", [], "aozora-logistics", True, "ja"),
    ("customer@aozora-logistics.example", "Hana Ito", [], "aozora-logistics", False, "en"),
    ("customer@pinecrest-dental.example", "Dr. Priya Nair", [], "pinecrest-dental", False, "en"),
    ("customer@kumo-games.example", "小林 翔", [], "kumo-games", True, "ja"),
    ("customer@harborlight.example", "Sam Whitlock", [], "harborlight-studio", False, "en"),
]


PARTS = ("help", "desk", "forum")  # besides the organisations and people, always seeded


async def seed(parts: tuple[str, ...] = PARTS) -> None:
    for slug, name, size, industry, plan in ORGANISATIONS:
        if not await Organisation.exists().where(Organisation.slug == slug):
            await save_organisation(SYSTEM, None, name=name, slug=slug, size=size, industry=industry, plan=plan)
    for email, name, roles, org, org_admin, locale in USERS:
        if not await User.exists().where(User.email == email):
            await create_user(email, DEMO_PASSWORD, name, roles, org_slug=org, org_admin=org_admin, locale=locale)
    if "help" in parts:
        await load_demo_help_center()
    if "desk" in parts:
        await load_demo_desk()
    if "forum" in parts:
        await load_demo_forum()


def print_logins() -> None:
    print(f"  Demo logins (password for all: {DEMO_PASSWORD}):")
    for email, _name, roles, _org, org_admin, _locale in USERS[:5]:
        role = ", ".join(roles) or ("customer, org admin" if org_admin else "customer")
        print(f"    {role:<22} {email}")
    print()
