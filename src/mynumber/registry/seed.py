"""A synthetic population for the embedded mode (``mynumber seed``), and the demo staff.

People are synthetic: names and kana readings come from Faker's ``ja_JP`` provider (topped up
with a few given names typical of older and younger generations), addresses are real towns of
six real municipalities with a Faker street part, and nothing here describes a real person.

The shape follows Japan:

* ages are drawn from the 2020 census pyramid (令和2年国勢調査, five-year groups, rounded to
  thousands): about 12% under 15 and 29% aged 65 or over, with more women among the old;
* households are families (世帯主, 妻 or 夫, 子, sometimes a 父 or 母 of the head), couples of
  all ages (many elderly couples), single parents, and many single households; every child is
  21 to 44 years younger than each parent living with them (so at least 20 and at most 45 years
  apart by birth date);
* about 2.5% are foreign residents (nationality not JP) with a 在留資格 and katakana names;
* those born in the year before ``as_of`` are registered with a ``birth`` event on their birth
  date, everyone else with an ``import`` event on ``as_of``.

Hard cases for record matching (名寄せ) are planted deliberately and returned in
:class:`SeedResult.hard_cases`:

* ``same_kana_birth_sex``: two different people with the same kana name, birth date and sex at
  different addresses, some also with the same kanji name (two 佐藤翔太 born on one day) and
  some with a homophone written differently (斎藤/斉藤): name + birth date + sex must never merge
  them, only all four basic items may;
* ``kanji_variant``: old and new forms of one surname (髙橋/高橋, 齋藤/斎藤, 渡邊/渡辺, 山﨑/山崎)
  on two different people with the same given name, so their normalised names are equal but
  their birth dates and addresses are not.

Everything is deterministic for a given ``seed`` and ``as_of`` date (``as_of`` defaults to today:
ages and the "born in the last year" births are counted from it).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from faker import Faker
from faker.providers.person.ja_JP import Provider as JaPersonProvider
from sqlalchemy import func, select

from mynumber import audit
from mynumber.auth.interfaces import StaffAuthService, StaffRole
from mynumber.db import Databases
from mynumber.registry import models as m
from mynumber.registry.bulk import BulkResident, store_residents
from mynumber.registry.interfaces import (
    InvalidResidentData,
    LifeEventKind,
    NewResident,
    ResidentRecord,
    ResidentStatus,
    Sex,
)
from mynumber.registry.services import (
    CONTEXT,
    RegistryServiceImpl,
    load_municipality_rows,
    to_record,
    validate_new_resident,
)
from mynumber.settings import Mode, Settings

DEFAULT_SEED = 2026
BATCH_SIZE = 1000
SEED_ACTOR = "system:seed"

# -- demo staff (embedded mode only) --------------------------------------------------------------

#: The password of every demo account (embedded mode only; never created in production).
DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - a published demo credential
# Fixed TOTP secrets (RFC 4648 base32, 32 characters = 160 bits) so that the demo accounts work
# the same on every machine; `mynumber staff totp USERNAME` prints the current code.
DEMO_CLERK_TOTP_SECRET = "MYNUMBERDEMOCLERKSHINJUKUTOTPKEY"  # noqa: S105
DEMO_SUPERVISOR_TOTP_SECRET = "MYNUMBERDEMOSUPERVISORSHINJUKUXX"  # noqa: S105
DEMO_SHIBUYA_TOTP_SECRET = "MYNUMBERDEMOCLERKSHIBUYATOTPKEYX"  # noqa: S105

SHINJUKU = "131041"
SHIBUYA = "131130"


@dataclass(frozen=True)
class DemoStaff:
    username: str
    display_name: str
    municipality_code: str
    role: StaffRole
    totp_secret: str


DEMO_STAFF: tuple[DemoStaff, ...] = (
    DemoStaff("demo-clerk", "デモ 窓口職員（新宿区）", SHINJUKU, StaffRole.CLERK,
              DEMO_CLERK_TOTP_SECRET),
    DemoStaff("demo-supervisor", "デモ 監督職員（新宿区）", SHINJUKU, StaffRole.SUPERVISOR,
              DEMO_SUPERVISOR_TOTP_SECRET),
    DemoStaff("demo-shibuya", "デモ 窓口職員（渋谷区）", SHIBUYA, StaffRole.CLERK,
              DEMO_SHIBUYA_TOTP_SECRET),
)


# -- reference data -------------------------------------------------------------------------------

# 令和2年国勢調査, population by five-year age group (thousands, rounded): (first age, count).
PYRAMID_2020: tuple[tuple[int, int], ...] = (
    (0, 4541), (5, 5114), (10, 5376), (15, 5620), (20, 5968), (25, 6011), (30, 6564),
    (35, 7468), (40, 8339), (45, 9713), (50, 8665), (55, 7809), (60, 7438), (65, 8227),
    (70, 9187), (75, 7097), (80, 5431), (85, 3776), (90, 1866), (95, 493), (100, 80),
)
# Share of men by age group (women live longer).
_MALE_SHARE: tuple[tuple[int, float], ...] = (
    (0, 0.512), (60, 0.495), (65, 0.485), (70, 0.470), (75, 0.450), (80, 0.410), (85, 0.340),
    (90, 0.260), (95, 0.180),
)


@dataclass(frozen=True)
class Town:
    name: str
    postal_code: str
    max_chome: int


@dataclass(frozen=True)
class SeedMunicipality:
    code: str
    weight: float
    towns: tuple[Town, ...]


# Real towns with their postal codes; the 丁目/番/号 and buildings are made up.
MUNICIPALITIES: tuple[SeedMunicipality, ...] = (
    SeedMunicipality(SHINJUKU, 0.30, (
        Town("西新宿", "1600023", 8), Town("歌舞伎町", "1600021", 2), Town("四谷", "1600004", 4),
        Town("高田馬場", "1690075", 4), Town("大久保", "1690072", 3), Town("百人町", "1690073", 4),
        Town("神楽坂", "1620825", 6),
    )),
    SeedMunicipality(SHIBUYA, 0.20, (
        Town("道玄坂", "1500043", 2), Town("神宮前", "1500001", 6), Town("恵比寿", "1500013", 4),
        Town("代々木", "1510053", 5), Town("笹塚", "1510073", 3), Town("宇田川町", "1500042", 1),
    )),
    SeedMunicipality("011011", 0.125, (  # 札幌市中央区
        Town("大通西", "0600042", 20), Town("北一条西", "0600001", 20),
        Town("北三条西", "0600003", 20), Town("南一条西", "0600061", 20),
    )),
    SeedMunicipality("271276", 0.125, (  # 大阪市北区
        Town("梅田", "5300001", 3), Town("曽根崎", "5300057", 2), Town("天神橋", "5300041", 8),
        Town("中之島", "5300005", 6), Town("天満", "5300043", 4),
    )),
    SeedMunicipality("401323", 0.125, (  # 福岡市博多区
        Town("博多駅前", "8120011", 4), Town("中洲", "8100801", 5), Town("祇園町", "8120038", 1),
        Town("住吉", "8120018", 5), Town("東比恵", "8120007", 3),
    )),
    SeedMunicipality("472018", 0.125, (  # 那覇市
        Town("久茂地", "9000015", 3), Town("牧志", "9000013", 3), Town("泉崎", "9000021", 2),
        Town("おもろまち", "9000006", 4),
    )),
)

# Given names (kanji, kana) added to Faker's short lists: the old and the young are named
# differently in Japan, and a bigger list makes accidental look-alikes rarer than planted ones.
_OLD_MALE = (("清", "キヨシ"), ("茂", "シゲル"), ("勇", "イサム"), ("博", "ヒロシ"),
             ("正雄", "マサオ"), ("武", "タケシ"), ("實", "ミノル"), ("進", "ススム"))
_OLD_FEMALE = (("節子", "セツコ"), ("幸子", "サチコ"), ("和子", "カズコ"), ("恵子", "ケイコ"),
               ("洋子", "ヨウコ"), ("弘子", "ヒロコ"), ("美智子", "ミチコ"), ("久子", "ヒサコ"))
_YOUNG_MALE = (("蓮", "レン"), ("湊", "ミナト"), ("陽翔", "ハルト"), ("悠真", "ユウマ"),
               ("大翔", "ヒロト"), ("蒼", "アオイ"), ("樹", "イツキ"), ("悠人", "ユウト"))
_YOUNG_FEMALE = (("陽菜", "ヒナ"), ("結菜", "ユイナ"), ("葵", "アオイ"), ("凛", "リン"),
                 ("芽依", "メイ"), ("さくら", "サクラ"), ("美咲", "ミサキ"), ("紬", "ツムギ"))
_MIDDLE_MALE = (("誠", "マコト"), ("大輔", "ダイスケ"), ("健太", "ケンタ"), ("拓也", "タクヤ"))
_MIDDLE_FEMALE = (("由美", "ユミ"), ("愛", "アイ"), ("久美子", "クミコ"), ("真由美", "マユミ"))

# Hard cases: old/new forms of one surname (codes.kana folds each pair to one key) ...
KANJI_VARIANT_SURNAMES: tuple[tuple[str, str, str], ...] = (
    ("髙橋", "高橋", "タカハシ"), ("齋藤", "斎藤", "サイトウ"), ("渡邊", "渡辺", "ワタナベ"),
    ("山﨑", "山崎", "ヤマザキ"),
)
# ... and homophones that are different surnames (never folded: 斉 is not a form of 斎).
HOMOPHONE_SURNAMES: tuple[tuple[str, str, str], ...] = (
    ("斎藤", "斉藤", "サイトウ"), ("伊藤", "伊東", "イトウ"), ("阿部", "安部", "アベ"),
)

# Foreign residents: nationality -> (weight, family names, male given, female given), katakana.
FOREIGN_NAMES: dict[str, tuple[float, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "CN": (0.27, ("ワン", "リ", "チャン", "リュウ", "チェン"), ("ウェイ", "ハオ", "ジエ"),
           ("メイ", "リン", "ファン")),
    "VN": (0.17, ("グエン", "チャン", "レ", "ファム"), ("ミン", "トゥアン", "フン"),
           ("ラン", "フオン", "ホア")),
    "KR": (0.14, ("キム", "イ", "パク", "チェ"), ("ミンジュン", "ジフン", "ソンホ"),
           ("ソヨン", "ジウ", "ミナ")),
    "PH": (0.10, ("サントス", "レイエス", "クルス"), ("ホセ", "マーク"),
           ("マリア", "アンジェリカ")),
    "BR": (0.07, ("シルバ", "オリベイラ", "ソウザ"), ("ルーカス", "ガブリエル"),
           ("アナ", "ジュリア")),
    "NP": (0.05, ("グルン", "タマン", "シュレスタ"), ("ラジュ", "ビシャル"), ("スニタ", "アニタ")),
    "US": (0.03, ("スミス", "ジョンソン", "ブラウン"), ("ジョン", "マイケル"),
           ("エミリー", "サラ")),
}
FOREIGN_SHARE = 0.025


# -- what a seed produces -------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonRef:
    """Enough to find one seeded resident again (the basic four items and the reading)."""

    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: dt.date
    sex: Sex
    address: str


@dataclass(frozen=True)
class HardCase:
    """Two different people a careless matcher would merge."""

    kind: str  # "same_kana_birth_sex" | "kanji_variant"
    people: tuple[PersonRef, PersonRef]
    note: str = ""


@dataclass(eq=False)  # people are compared by identity: two 80-year-old men are not one
class SeedPerson:
    age: int
    sex: Sex
    family_name: str = ""
    given_name: str = ""
    family_name_kana: str = ""
    given_name_kana: str = ""
    birth_date: dt.date = dt.date.min
    relationship: str = "世帯主"
    nationality: str = "JP"
    residence_status: str = ""

    def ref(self, household: SeedHousehold) -> PersonRef:
        return PersonRef(self.family_name, self.given_name, self.family_name_kana,
                         self.given_name_kana, self.birth_date, self.sex, household.address)


@dataclass(eq=False)
class SeedHousehold:
    kind: str  # family | single_parent | couple | single | foreign
    members: list[SeedPerson]
    municipality_code: str = ""
    address: str = ""
    postal_code: str = ""


@dataclass
class Population:
    households: list[SeedHousehold]
    hard_cases: list[HardCase]
    as_of: dt.date

    @property
    def size(self) -> int:
        return sum(len(h.members) for h in self.households)

    def bulk_items(self) -> Iterator[list[BulkResident]]:
        """BulkResident items household by household (one list per household)."""
        born_since = self.as_of - dt.timedelta(days=365)
        for index, household in enumerate(self.households):
            items = []
            for person in household.members:
                resident = NewResident(
                    family_name=person.family_name, given_name=person.given_name,
                    family_name_kana=person.family_name_kana,
                    given_name_kana=person.given_name_kana, birth_date=person.birth_date,
                    sex=person.sex, municipality_code=household.municipality_code,
                    address=household.address, postal_code=household.postal_code,
                    relationship=person.relationship, nationality=person.nationality,
                    residence_status=person.residence_status,
                )
                birth = person.birth_date > born_since
                items.append(BulkResident(
                    resident=resident, household_key=f"seed-household-{index}",
                    event=LifeEventKind.BIRTH if birth else LifeEventKind.IMPORT,
                    occurred_on=person.birth_date if birth else self.as_of,
                ))
            yield items


@dataclass
class SeedResult:
    requested: int
    created: int = 0
    households: int = 0
    skipped: bool = False  # --if-empty found residents already
    existing: int = 0
    seconds: float = 0.0
    hard_cases: list[HardCase] = field(default_factory=list)
    staff_created: list[str] = field(default_factory=list)


class SeedTarget(Protocol):
    """What seeding needs of the composition root (``mynumber.app.Container`` fits)."""

    settings: Settings
    databases: Databases
    registry: RegistryServiceImpl

    @property
    def staff_auth(self) -> StaffAuthService: ...


# -- generation -----------------------------------------------------------------------------------


class _Pool:
    """People not yet placed in a household, by sex and age, picked at random."""

    def __init__(self, people: Sequence[SeedPerson]) -> None:
        self._by: dict[Sex, dict[int, list[SeedPerson]]] = {
            Sex.MALE: defaultdict(list), Sex.FEMALE: defaultdict(list)
        }
        for person in people:
            self._by[person.sex][person.age].append(person)

    def take(
        self, rng: random.Random, sex: Sex | None, lo: int, hi: int, near: int | None = None
    ) -> SeedPerson | None:
        sexes = [sex] if sex is not None else [Sex.MALE, Sex.FEMALE]
        options = [(s, a) for s in sexes for a in range(max(lo, 0), hi + 1) if self._by[s].get(a)]
        if not options:
            return None
        if near is None:
            s, a = rng.choices(options, weights=[len(self._by[s][a]) for s, a in options])[0]
        else:
            best = min(abs(a - near) for _, a in options)
            s, a = rng.choice([(s, a) for s, a in options if abs(a - near) == best])
        bucket = self._by[s][a]
        i = rng.randrange(len(bucket))
        bucket[i], bucket[-1] = bucket[-1], bucket[i]
        return bucket.pop()

    def remaining(self) -> list[SeedPerson]:
        return [p for s in (Sex.MALE, Sex.FEMALE) for a in sorted(self._by[s])
                for p in self._by[s][a]]

    def remove(self, person: SeedPerson) -> None:
        self._by[person.sex][person.age].remove(person)


def _largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    scale = total / sum(weights)
    raw = [w * scale for w in weights]
    counts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _male_share(age: int) -> float:
    share = _MALE_SHARE[0][1]
    for first, value in _MALE_SHARE:
        if age >= first:
            share = value
    return share


def _draw_people(count: int, rng: random.Random) -> list[SeedPerson]:
    """``count`` ages and sexes with the census shape (exact group counts, not just expected)."""
    people = []
    for (first, _), n in zip(
        PYRAMID_2020, _largest_remainder(count, [c for _, c in PYRAMID_2020]), strict=True
    ):
        span = 6 if first == 100 else 5
        for _ in range(n):
            age = first + rng.randrange(span)
            sex = Sex.MALE if rng.random() < _male_share(age) else Sex.FEMALE
            people.append(SeedPerson(age=age, sex=sex))
    rng.shuffle(people)
    return people


def _birth_date(age: int, as_of: dt.date, rng: random.Random) -> dt.date:
    """A birth date at which one is exactly ``age`` on ``as_of``."""
    year = as_of.year - age
    try:
        birthday = as_of.replace(year=year)
    except ValueError:  # 29 February
        birthday = as_of.replace(year=year, day=28)
    return birthday - dt.timedelta(days=rng.randrange(365))


class _Namer:
    def __init__(self, fake: Faker) -> None:
        self.fake = fake

    def surname(self) -> tuple[str, str]:
        kanji, kana, _ = self.fake.last_name_pair()
        return kanji, kana

    def given(self, sex: Sex, age: int, avoid: set[str]) -> tuple[str, str]:
        if sex is Sex.MALE:
            base = [(k, r) for k, r, _ in JaPersonProvider.first_name_male_pairs]
            era = _OLD_MALE if age >= 65 else _YOUNG_MALE if age < 25 else _MIDDLE_MALE
        else:
            base = [(k, r) for k, r, _ in JaPersonProvider.first_name_female_pairs]
            era = _OLD_FEMALE if age >= 65 else _YOUNG_FEMALE if age < 25 else _MIDDLE_FEMALE
        choices = base + list(era) * 3  # the era's names are three times as likely
        for _ in range(20):
            kanji, kana = self.fake.random_element(choices)
            if kana not in avoid:
                return kanji, kana
        return kanji, kana

    def name_household(self, household: SeedHousehold) -> None:
        family, family_kana = self.surname()
        used: set[str] = set()
        for person in household.members:
            person.family_name, person.family_name_kana = family, family_kana
            person.given_name, person.given_name_kana = self.given(person.sex, person.age, used)
            used.add(person.given_name_kana)


def _families(
    pool: _Pool, children: _Pool, rng: random.Random, orphans: list[SeedPerson]
) -> list[SeedHousehold]:
    """Children with their parents: each parent 21-44 years older than each child."""
    households = []
    while True:
        anchor = children.take(rng, None, 0, 200)
        if anchor is None:
            break
        kids = [anchor]
        for _ in range(rng.choices((0, 1, 2, 3), (0.45, 0.40, 0.12, 0.03))[0]):
            sibling = children.take(rng, None, anchor.age - 8, anchor.age + 8)
            if sibling is not None:
                kids.append(sibling)
        oldest = max(k.age for k in kids)
        youngest = min(k.age for k in kids)
        lo, hi = oldest + 21, youngest + 44
        target = rng.randint(lo, max(lo, min(hi, youngest + 36)))
        single_parent = rng.random() < 0.10
        mother = None
        if not (single_parent and rng.random() < 0.15):
            mother = pool.take(rng, Sex.FEMALE, lo, hi, near=target)
        father = None
        if mother is None or not single_parent:
            around = mother.age if mother is not None else target
            father = pool.take(rng, Sex.MALE, max(lo, around - 3), min(hi, around + 8),
                               near=around + 2)
            if father is None and mother is None:
                father = pool.take(rng, Sex.MALE, lo, hi, near=target)
        if mother is None and father is None:
            orphans.extend(kids)  # no adult fits (tiny populations): they become adults
            continue
        parents = [p for p in (father, mother) if p is not None]
        if len(parents) == 2 and rng.random() < 0.05:
            parents.reverse()  # the wife is the head of the household
        parents[0].relationship = "世帯主"
        if len(parents) == 2:
            parents[1].relationship = "妻" if parents[1].sex is Sex.FEMALE else "夫"
        for kid in kids:
            kid.relationship = "子"
        members = [*parents, *sorted(kids, key=lambda k: -k.age)]
        head = parents[0]
        if head.age >= 35 and rng.random() < 0.08:
            sex = Sex.FEMALE if rng.random() < 0.7 else Sex.MALE
            elder = pool.take(rng, sex, max(head.age + 21, 60), head.age + 44)
            if elder is not None:
                elder.relationship = "母" if elder.sex is Sex.FEMALE else "父"
                members.append(elder)
        households.append(
            SeedHousehold("family" if len(parents) == 2 else "single_parent", members)
        )
    return households


def _foreigners(pool: _Pool, count: int, rng: random.Random, fake: Faker) -> list[SeedHousehold]:
    households = []
    codes = list(FOREIGN_NAMES)
    weights = [FOREIGN_NAMES[c][0] for c in codes]
    for _ in range(count):
        # Foreign residents are young: students and workers more than the retired.
        lo, hi = rng.choices(((18, 34), (35, 54), (55, 75)), (0.6, 0.3, 0.1))[0]
        person = pool.take(rng, None, lo, hi) or pool.take(rng, None, 18, 75)
        if person is None:
            break
        nationality = rng.choices(codes, weights)[0]
        _, families, male, female = FOREIGN_NAMES[nationality]
        person.nationality = nationality
        person.family_name = person.family_name_kana = fake.random_element(families)
        person.given_name = person.given_name_kana = fake.random_element(
            male if person.sex is Sex.MALE else female
        )
        if nationality == "KR" and person.age >= 60:
            status = "特別永住者"
        elif person.age < 30:
            status = rng.choices(("留学", "技術・人文知識・国際業務"), (0.6, 0.4))[0]
        elif person.age < 50:
            status = rng.choices(
                ("技術・人文知識・国際業務", "永住者", "定住者"), (0.55, 0.35, 0.1)
            )[0]
        else:
            status = "永住者"
        person.residence_status = status
        households.append(SeedHousehold("foreign", [person]))
    return households


def _couples_and_singles(pool: _Pool, rng: random.Random) -> list[SeedHousehold]:
    households = []
    men = [p for p in pool.remaining() if p.sex is Sex.MALE]
    rng.shuffle(men)
    for man in men:
        chance = 0.70 if man.age >= 65 else 0.40 if man.age >= 25 else 0.0
        if rng.random() >= chance:
            continue
        pool.remove(man)
        wife = pool.take(rng, Sex.FEMALE, max(18, man.age - 7), man.age + 3, near=man.age - 2)
        if wife is None:
            households.append(SeedHousehold("single", [man]))
            continue
        man.relationship, wife.relationship = "世帯主", "妻"
        households.append(SeedHousehold("couple", [man, wife]))
    rest = pool.remaining()
    rng.shuffle(rest)
    for person in rest:
        pool.remove(person)
        person.relationship = "世帯主"
        households.append(SeedHousehold("single", [person]))
    return households


def _address(
    fake: Faker, rng: random.Random, rows: dict[str, dict[str, str]], used: set[str]
) -> tuple[str, str, str]:
    municipality = rng.choices(MUNICIPALITIES, [x.weight for x in MUNICIPALITIES])[0]
    row = rows[municipality.code]
    while True:
        town = rng.choice(municipality.towns)
        street = (f"{town.name}{rng.randint(1, town.max_chome)}丁目"
                  f"{fake.random_int(1, 30)}番{fake.random_int(1, 20)}号")
        if rng.random() < 0.45:  # an apartment
            street += (f" {town.name}{fake.building_name()}"
                       f"{fake.random_int(1, 12)}{fake.random_int(1, 9):02d}")
        address = f"{row['prefecture']}{row['name']}{street}"
        if address not in used:
            used.add(address)
            return municipality.code, address, town.postal_code


def _plant_hard_cases(
    households: list[SeedHousehold], count: int, rng: random.Random, fake: Faker
) -> list[HardCase]:
    """Re-dress some single Japanese adults as the hard cases (names, and one birth date)."""
    singles = [h for h in households if h.kind == "single" and h.members[0].age >= 20]
    rng.shuffle(singles)
    by_sex: dict[Sex, list[SeedHousehold]] = {Sex.MALE: [], Sex.FEMALE: []}
    for h in singles:
        by_sex[h.members[0].sex].append(h)
    namer = _Namer(fake)
    cases: list[HardCase] = []

    def two(sex: Sex) -> tuple[SeedHousehold, SeedHousehold] | None:
        if len(by_sex[sex]) < 2:
            return None
        return by_sex[sex].pop(), by_sex[sex].pop()

    pairs = max(2, count // 1000)
    for i in range(pairs):
        picked = two(Sex.MALE if i % 2 == 0 else Sex.FEMALE) or two(Sex.FEMALE) or two(Sex.MALE)
        if picked is None:
            break
        a, b = (h.members[0] for h in picked)
        if i % 3 == 1:  # a homophone surname written with a different character
            a.family_name, b.family_name, a.family_name_kana = HOMOPHONE_SURNAMES[
                (i // 3) % len(HOMOPHONE_SURNAMES)
            ]
            note = "same reading, different surnames"
        else:
            a.family_name, a.family_name_kana = namer.surname()
            b.family_name = a.family_name
            note = "same kanji name"
        a.given_name, a.given_name_kana = namer.given(a.sex, a.age, set())
        b.given_name, b.given_name_kana = a.given_name, a.given_name_kana
        b.family_name_kana = a.family_name_kana
        b.age, b.birth_date = a.age, a.birth_date
        cases.append(HardCase("same_kana_birth_sex", (a.ref(picked[0]), b.ref(picked[1])), note))

    for index, (old, new, kana) in enumerate(KANJI_VARIANT_SURNAMES):
        picked = two(Sex.FEMALE if index % 2 else Sex.MALE) or two(Sex.MALE) or two(Sex.FEMALE)
        if picked is None:
            break
        a, b = (h.members[0] for h in picked)
        a.family_name, b.family_name = old, new
        a.family_name_kana = b.family_name_kana = kana
        a.given_name, a.given_name_kana = namer.given(a.sex, a.age, set())
        b.given_name, b.given_name_kana = a.given_name, a.given_name_kana
        if b.birth_date == a.birth_date:  # different people: never the same birth date here
            b.birth_date -= dt.timedelta(days=1 + rng.randrange(300))
        cases.append(HardCase("kanji_variant", (a.ref(picked[0]), b.ref(picked[1])),
                              f"{old}/{new}"))
    return cases


def generate_population(
    count: int, seed: int = DEFAULT_SEED, as_of: dt.date | None = None
) -> Population:
    """Build ``count`` synthetic residents in households (no database involved)."""
    if count < 0:
        raise ValueError("count must not be negative")
    as_of = as_of or dt.date.today()
    rng = random.Random(seed)
    fake = Faker("ja_JP")
    fake.seed_instance(seed)
    rows = {row["code"]: row for row in load_municipality_rows()}
    missing = [x.code for x in MUNICIPALITIES if x.code not in rows]
    if missing:
        raise RuntimeError(f"municipalities missing from the reference list: {missing}")

    people = _draw_people(count, rng)
    # Children, and half of those aged 18-24, live with their parents.
    at_home = [p for p in people if p.age < 18 or (p.age < 25 and rng.random() < 0.5)]
    home = {id(p) for p in at_home}
    pool = _Pool([p for p in people if id(p) not in home])
    orphans: list[SeedPerson] = []
    households = _families(pool, _Pool(at_home), rng, orphans)
    for person in orphans:  # only when no adult could be their parent (tiny populations)
        person.age = max(person.age, 18)
    foreign = round(count * FOREIGN_SHARE) if count >= 100 else 0
    households += _foreigners(pool, foreign, rng, fake)
    pool_rest = _Pool([*pool.remaining(), *orphans])
    households += _couples_and_singles(pool_rest, rng)
    rng.shuffle(households)

    namer = _Namer(fake)
    used: set[str] = set()
    for household in households:
        household.municipality_code, household.address, household.postal_code = _address(
            fake, rng, rows, used
        )
        for person in household.members:
            person.birth_date = _birth_date(person.age, as_of, rng)
        if household.kind != "foreign":
            namer.name_household(household)
    hard_cases = _plant_hard_cases(households, count, rng, fake)
    return Population(households, hard_cases, as_of)


# -- storing --------------------------------------------------------------------------------------


def resident_count(databases: Databases) -> int:
    with databases.unit_of_work(CONTEXT) as session:
        return int(session.scalar(select(func.count()).select_from(m.Resident)) or 0)


def seed_population(
    target: SeedTarget,
    count: int | None = None,
    *,
    seed: int = DEFAULT_SEED,
    if_empty: bool = False,
    as_of: dt.date | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> SeedResult:
    """Generate and store the population in one transaction (all or nothing, so an
    interrupted seed leaves the database empty and ``--if-empty`` seeds it again).

    ``progress`` is called with the number of residents stored so far after each batch.
    """
    count = target.settings.seed_residents if count is None else count
    today = dt.date.today()
    as_of = as_of or today
    if as_of > today:
        raise InvalidResidentData("as_of must not be in the future", field="as_of")
    result = SeedResult(requested=count)
    t0 = time.perf_counter()
    with target.databases.unit_of_work(CONTEXT) as session:
        # Lock the code pool first: a second `seed --if-empty` running at the same time waits
        # here and then sees the residents this one stored.
        pool = session.scalars(
            select(m.ResidentCodePool).where(m.ResidentCodePool.id == 1).with_for_update()
        ).first()
        if pool is None:
            session.add(m.ResidentCodePool(id=1, next_counter=0))
            session.flush()
        result.existing = int(session.scalar(select(func.count()).select_from(m.Resident)) or 0)
        if if_empty and result.existing:
            result.skipped = True
            return result
        population = generate_population(count, seed, as_of)
        details = {"source": "seed", "seed": seed, "as_of": as_of.isoformat()}
        batch: list[BulkResident] = []
        for items in population.bulk_items():
            # Checked like any registration (BulkResident expects validated data).
            batch.extend(
                replace(item, resident=validate_new_resident(item.resident, today))
                for item in items
            )
            result.households += 1
            if len(batch) >= batch_size:
                result.created += len(store_residents(
                    target.registry, session, batch, SEED_ACTOR, audit_details=details))
                batch = []
                if progress is not None:
                    progress(result.created)
        if batch:
            result.created += len(store_residents(
                target.registry, session, batch, SEED_ACTOR, audit_details=details))
            if progress is not None:
                progress(result.created)
        result.hard_cases = population.hard_cases
    result.seconds = time.perf_counter() - t0
    return result


def current_residents(databases: Databases) -> list[ResidentRecord]:
    """Every current, numbered resident (for seeding cards), read in one audited transaction."""
    with databases.unit_of_work(CONTEXT) as session:
        rows = session.scalars(
            select(m.Resident).where(m.Resident.status == ResidentStatus.RESIDENT.value,
                                     m.Resident.number_generation.is_not(None))
            .order_by(m.Resident.id)
        ).all()
        records = [to_record(row) for row in rows]
        audit.record(session, m.AuditEvent, "registry:residents:read", actor=SEED_ACTOR,
                     subject="residents", reason="seed cards", count=len(records))
        return records


def ensure_demo_staff(target: SeedTarget) -> list[str]:
    """Create the demo accounts that are missing (embedded mode only); return their names."""
    if target.settings.mode is not Mode.EMBEDDED:
        return []
    created = []
    for demo in DEMO_STAFF:
        if target.staff_auth.find_staff(demo.username) is not None:
            continue
        target.staff_auth.create_staff(
            demo.username, demo.display_name, demo.municipality_code, demo.role, DEMO_PASSWORD,
            totp_secret=demo.totp_secret,
        )
        created.append(demo.username)
    return created


def run_seed(
    target: SeedTarget,
    count: int | None = None,
    *,
    seed: int = DEFAULT_SEED,
    if_empty: bool = False,
    as_of: dt.date | None = None,
    progress: Callable[[int], None] | None = None,
) -> SeedResult:
    """``mynumber seed``: the population (unless ``if_empty`` and residents exist), then the
    demo staff in embedded mode (idempotent: existing accounts are left alone)."""
    result = seed_population(target, count, seed=seed, if_empty=if_empty, as_of=as_of,
                             progress=progress)
    result.staff_created = ensure_demo_staff(target)
    return result
