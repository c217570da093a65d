"""A seeded generator of help-center-like search documents for the large-corpus benchmark.

Each object (pk) has an English and a Japanese document, so half the corpus is each language.
The words are invented here, not taken from any data set; what matters for Meilisearch is a
realistic vocabulary size, document length and language mix, not meaning.
"""

from __future__ import annotations

import random

from server.search.registry import SearchDoc


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


TYPE_NAME = "benchdoc"
WORDS_PER_DOC = 150
CATEGORIES = ("billing", "accounts", "timeline", "exports", "integrations", "mobile", "security", "teams")
# Mostly public, as a help center is; a share for signed-in users and staff.
AUDIENCES = ((["public"], 80), (["signed_in"], 12), (["staff"], 8))

EN_NOUNS = _words(
    """
    account invoice timeline project password workspace member team report export import calendar
    reminder notification integration webhook token dashboard filter label milestone task comment
    attachment subscription plan payment receipt refund browser device phone email address profile
    avatar language timezone setting permission role owner guest archive template board column card
    deadline schedule backup history version session login signature domain server limit quota storage
    file folder link share search result error message window button menu sidebar header widget chart
    spreadsheet document audit policy
    """
)
EN_VERBS = _words(
    """
    open create delete rename export import share invite remove update change reset connect disconnect
    enable disable configure restore archive download upload sync verify cancel renew upgrade downgrade
    schedule assign filter sort search print copy move merge split lock unlock review
    """
)
EN_ADJECTIVES = _words(
    """
    new old shared private public default custom monthly yearly weekly recent missing duplicate expired
    active inactive pending failed secure mobile desktop offline online automatic manual empty large
    small primary secondary
    """
)
EN_GLUE = _words(
    """
    the a your this each every from to in on with for after before when if then and or not can will
    should may is are you we it
    """
)

JA_NOUNS = _words(
    """
    アカウント 請求書 タイムライン プロジェクト パスワード ワークスペース メンバー チーム レポート
    エクスポート インポート カレンダー リマインダー 通知 連携 トークン ダッシュボード フィルター ラベル
    マイルストーン タスク コメント 添付ファイル 契約 料金 支払い 領収書 返金 ブラウザ 端末 電話 メール
    住所 プロフィール 言語 時間帯 設定 権限 役割 管理者 招待 保存 履歴 版 画面 ボタン 項目 一覧 期限
    予定 会議 資料 表 図 書類 検索 結果 誤り 案内 利用者 会社 組織 部署 担当者 容量 上限 記録 確認 変更
    削除 作成 追加 共有 同期 復元 更新 登録 解約 申し込み お問い合わせ 手順 方法 問題 原因 対処
    """
)
JA_VERBS = _words(
    """
    開きます 作成します 削除します 変更します 保存します 共有します 招待します 確認します 選択します
    入力します 表示されます 送信します 受け取ります 設定します 有効にします 無効にします 復元します
    更新します 登録します 解除します 移動します 並べ替えます 検索します 印刷します ダウンロードします
    アップロードします 同期します 連絡します
    """
)
JA_ADJECTIVES = _words(
    """
    新しい 古い 共有された 非公開の 公開の 既定の 毎月の 毎年の 最近の 重複した 期限切れの 有効な
    保留中の 安全な 自動の 手動の 空の 大きな 小さな 主な
    """
)
JA_PARTICLES = ("を", "に", "で", "が", "は", "の", "から", "まで", "と")
JA_OPENERS = ("まず", "次に", "その後", "必要に応じて", "管理者は", "利用者は", "なお", "ただし", "通常")


def _en_sentence(rng: random.Random) -> list[str]:
    words = [rng.choice(EN_GLUE)]
    for _ in range(rng.randint(2, 4)):
        words += [rng.choice(EN_VERBS), rng.choice(EN_GLUE), rng.choice(EN_ADJECTIVES), rng.choice(EN_NOUNS)]
    words[0] = words[0].capitalize()
    words[-1] += "."
    return words


def _ja_sentence(rng: random.Random) -> list[str]:
    words = [rng.choice(JA_OPENERS)]
    for _ in range(rng.randint(2, 4)):
        words += [rng.choice(JA_ADJECTIVES), rng.choice(JA_NOUNS), rng.choice(JA_PARTICLES)]
    words += [rng.choice(JA_NOUNS), "を", rng.choice(JA_VERBS)]
    return words


def _body(rng: random.Random, japanese: bool) -> str:
    """About WORDS_PER_DOC words (for Japanese: vocabulary items), in paragraphs."""
    sentence = _ja_sentence if japanese else _en_sentence
    paragraphs, paragraph, count = [], [], 0
    while count < WORDS_PER_DOC:
        words = sentence(rng)
        count += len(words)
        paragraph.append(("".join(words) + "。") if japanese else " ".join(words))
        if len(paragraph) >= rng.randint(2, 4):
            paragraphs.append(("" if japanese else " ").join(paragraph))
            paragraph = []
    if paragraph:
        paragraphs.append(("" if japanese else " ").join(paragraph))
    return "\n".join(paragraphs)


def _titles(rng: random.Random) -> tuple[str, str]:
    verb, adjective, noun = rng.choice(EN_VERBS), rng.choice(EN_ADJECTIVES), rng.choice(EN_NOUNS)
    second = rng.choice(EN_NOUNS)
    english = f"How to {verb} a {adjective} {noun} {rng.choice(('in', 'from', 'for'))} your {second}"
    japanese = f"{rng.choice(JA_NOUNS)}の{rng.choice(JA_ADJECTIVES)}{rng.choice(JA_NOUNS)}を{rng.choice(JA_VERBS)}には"
    return english, japanese


def _audience(rng: random.Random) -> list[str]:
    labels, weights = zip(*AUDIENCES, strict=True)
    return list(rng.choices(labels, weights=weights)[0])


def generate(count: int, seed: int = 1) -> list[SearchDoc]:
    """`count` documents (rounded up to even): pks 1..count/2, each in English and Japanese."""
    rng = random.Random(seed)
    docs: list[SearchDoc] = []
    base_time = 1_767_225_600  # 2026-01-01
    for pk in range(1, (count + 1) // 2 + 1):
        audience = _audience(rng)
        category = rng.choice(CATEGORIES)
        rank = round(rng.random(), 3)
        updated_at = base_time + rng.randrange(0, 300 * 86_400)
        title_en, title_ja = _titles(rng)
        for locale, title in (("en", title_en), ("ja", title_ja)):
            docs.append(
                SearchDoc(
                    type=TYPE_NAME,
                    pk=pk,
                    locale=locale,
                    title=title,
                    text=_body(rng, japanese=locale == "ja"),
                    url=f"/bench/{pk}?locale={locale}",
                    audience=audience,
                    facets={"category": category},
                    rank=rank,
                    updated_at=updated_at,
                )
            )
    return docs


def queries(count: int, seed: int = 2) -> list[str]:
    """Search-box queries over the same vocabulary: single words, pairs, typos, Japanese."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.35:
            out.append(rng.choice(EN_NOUNS))
        elif kind < 0.55:
            out.append(f"{rng.choice(EN_VERBS)} {rng.choice(EN_NOUNS)}")
        elif kind < 0.7:
            word = rng.choice([w for w in EN_NOUNS if len(w) >= 6])
            cut = rng.randrange(1, len(word) - 1)
            out.append(word[:cut] + word[cut + 1 :])  # one letter dropped: typo tolerance at work
        elif kind < 0.9:
            out.append(rng.choice(JA_NOUNS))
        else:
            out.append(f"{rng.choice(JA_NOUNS)} {rng.choice(JA_NOUNS)}")
    return out
