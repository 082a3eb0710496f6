"""Synthetic 薬剤情報 / 特定健診情報 / 診療・手術情報 for one person (what the institution sees
with the patient's consent). Pure and deterministic: everything comes from the ``rng`` the
caller passes (institution names from Faker ``ja_JP`` seeded from it), so a seed gives the same
lines on every run and machine. Nothing here describes a real person or institution.

- 薬剤情報 (``ConsentItem.DRUGS``): generic names with strength (一般名処方 style:
  ``アムロジピン錠5mg``), the dose, timing and days (``1回1錠 1日1回 朝食後 56日分``), the
  pharmacy (or the clinic, 院内処方) as the source. Long-term prescriptions repeat at their
  interval; acute ones are a few days' worth.
- 特定健診情報 (``ConsentItem.CHECKUPS``): one check-up a year, and only at ages 40-74 (高齢者の
  医療の確保に関する法律 第20条: 特定健康診査 is for those 40 to 74). The caller gives today's
  age only, so a check-up is placed on a day only when the person was 40-74 on it *whatever the
  birthday* (``age - years_back - 1 >= 40`` and ``age - years_back <= 74``). Measures: BMI,
  腹囲, 血圧, HbA1c, 空腹時血糖, LDL/HDL コレステロール, 中性脂肪, AST/ALT/γ-GT, 尿糖, 尿蛋白.
- 診療・手術情報 (``ConsentItem.TREATMENTS``): visits (初診料・再診料), examinations and now and
  then an operation, with the department and outpatient/inpatient as the value.

Every line is dated within ``[today - months, today]``; the list is newest first.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
import threading
from dataclasses import dataclass

from faker import Faker

from mynumber.insurance.interfaces import ClinicalRecord, ConsentItem

#: 特定健康診査 is for ages 40 to 74 (高齢者の医療の確保に関する法律 第20条).
CHECKUP_MIN_AGE = 40
CHECKUP_MAX_AGE = 74

_local = threading.local()


def _faker(seed: int) -> Faker:
    # One Faker per thread (building one costs ~30 ms), re-seeded per call: deterministic for
    # the seed and safe when several threads generate at once.
    fake: Faker | None = getattr(_local, "fake", None)
    if fake is None:
        fake = Faker("ja_JP")
        _local.fake = fake
    fake.seed_instance(seed)
    return fake


@dataclass(frozen=True)
class _Drug:
    name: str  # generic name with form and strength
    dose: str  # 1回量
    timing: str  # 1日の回数と服用時点
    chronic: bool
    min_age: int = 0
    max_age: int = 200


# Generic names (一般名) in the form a 薬剤情報 line shows them.
_DRUGS: tuple[_Drug, ...] = (
    # long-term (生活習慣病 and the like)
    _Drug("アムロジピン錠5mg", "1回1錠", "1日1回 朝食後", True, 35),
    _Drug("テルミサルタン錠40mg", "1回1錠", "1日1回 朝食後", True, 40),
    _Drug("カンデサルタン錠8mg", "1回1錠", "1日1回 朝食後", True, 40),
    _Drug("アトルバスタチン錠10mg", "1回1錠", "1日1回 夕食後", True, 40),
    _Drug("ロスバスタチン錠2.5mg", "1回1錠", "1日1回 夕食後", True, 40),
    _Drug("メトホルミン塩酸塩錠250mg", "1回1錠", "1日2回 朝夕食後", True, 40),
    _Drug("シタグリプチン錠50mg", "1回1錠", "1日1回 朝食後", True, 45),
    _Drug("フェブキソスタット錠20mg", "1回1錠", "1日1回 朝食後", True, 40),
    _Drug("ランソプラゾールOD錠15mg", "1回1錠", "1日1回 朝食後", True, 30),
    _Drug("エチゾラム錠0.5mg", "1回1錠", "1日1回 就寝前", True, 30),
    _Drug("タムスロシン塩酸塩OD錠0.2mg", "1回1錠", "1日1回 朝食後", True, 55),
    _Drug("ドネペジル塩酸塩OD錠5mg", "1回1錠", "1日1回 朝食後", True, 70),
    _Drug("レボチロキシンナトリウム錠50μg", "1回1錠", "1日1回 朝食後", True, 20),
    _Drug("モンテルカスト錠10mg", "1回1錠", "1日1回 就寝前", True, 15),
    # short courses and as-needed
    _Drug("アセトアミノフェン錠200mg", "1回2錠", "発熱時 頓用", False, 7),
    _Drug("ロキソプロフェンナトリウム錠60mg", "1回1錠", "1日3回 毎食後", False, 15),
    _Drug("レバミピド錠100mg", "1回1錠", "1日3回 毎食後", False, 15),
    _Drug("カルボシステイン錠500mg", "1回1錠", "1日3回 毎食後", False, 12),
    _Drug("アンブロキソール塩酸塩錠15mg", "1回1錠", "1日3回 毎食後", False, 12),
    _Drug("デキストロメトルファン臭化水素酸塩錠15mg", "1回2錠", "1日3回 毎食後", False, 12),
    _Drug("フェキソフェナジン塩酸塩錠60mg", "1回1錠", "1日2回 朝夕食後", False, 12),
    _Drug("セフジトレンピボキシル錠100mg", "1回1錠", "1日3回 毎食後", False, 15),
    _Drug("クラリスロマイシン錠200mg", "1回1錠", "1日2回 朝夕食後", False, 15),
    _Drug("ファモチジン錠20mg", "1回1錠", "1日2回 朝夕食後", False, 15),
    _Drug("カルボシステインDS50%", "1回0.6g", "1日3回 毎食後", False, 0, 11),
    _Drug("アモキシシリン細粒10%", "1回0.8g", "1日3回 毎食後", False, 0, 11),
    _Drug("アセトアミノフェン細粒20%", "1回0.5g", "発熱時 頓用", False, 0, 11),
    _Drug("ツロブテロールテープ1mg", "1回1枚", "1日1回 貼付", False, 0, 11),
)

_CHRONIC_INTERVALS = (28, 56, 84)
_ACUTE_DAYS = (3, 5, 7, 14)
_PRN_TIMES = (5, 10)


@dataclass(frozen=True)
class _Procedure:
    label: str
    department: str
    inpatient_days: int  # 0 for outpatient
    min_age: int = 0


# 診療行為 as a line of 診療・手術情報 shows them.
_EXAMINATIONS: tuple[_Procedure, ...] = (
    _Procedure("末梢血液一般検査", "内科", 0),
    _Procedure("HbA1c", "内科", 0, 30),
    _Procedure("生化学的検査(肝機能・脂質)", "内科", 0, 20),
    _Procedure("胸部単純X線撮影", "内科", 0),
    _Procedure("心電図検査(12誘導)", "循環器内科", 0, 30),
    _Procedure("腹部超音波検査", "消化器内科", 0, 20),
    _Procedure("上部消化管内視鏡検査", "消化器内科", 0, 35),
    _Procedure("頭部CT撮影", "脳神経外科", 0, 20),
    _Procedure("頭部MRI撮影", "脳神経外科", 0, 20),
    _Procedure("眼底検査", "眼科", 0, 40),
    _Procedure("精密眼圧測定", "眼科", 0),
    _Procedure("四肢単純X線撮影", "整形外科", 0),
    _Procedure("骨塩定量検査", "整形外科", 0, 50),
    _Procedure("ダーモスコピー", "皮膚科", 0),
    _Procedure("インフルエンザウイルス抗原定性", "内科", 0),
    _Procedure("SARS-CoV-2抗原定性", "内科", 0),
)
_HOSPITAL_DEPARTMENTS = ("内科", "循環器内科", "消化器内科", "整形外科", "脳神経外科", "眼科")
_OPERATIONS: tuple[_Procedure, ...] = (
    _Procedure("水晶体再建術(白内障手術)", "眼科", 2, 60),
    _Procedure("内視鏡的大腸ポリープ・粘膜切除術", "消化器内科", 1, 40),
    _Procedure("腹腔鏡下虫垂切除術", "外科", 5, 6),
    _Procedure("腹腔鏡下鼠径ヘルニア手術", "外科", 3, 20),
    _Procedure("骨折観血的手術(前腕)", "整形外科", 7, 8),
    _Procedure("皮膚腫瘍摘出術", "皮膚科", 0, 10),
    _Procedure("経皮的冠動脈ステント留置術", "循環器内科", 4, 50),
)


def synthetic_records(rng: random.Random, *, today: dt.date, age: int,
                      months: int = 36) -> list[ClinicalRecord]:
    """The person's synthetic lines over the last ``months`` months (newest first).

    ``age`` is the person's age today; 特定健診 lines appear only on days the person was 40-74
    (see the module docstring). Deterministic for the state of ``rng``."""
    if age < 0 or months < 1:
        raise ValueError("age must be >= 0 and months >= 1")
    start = _months_before(today, months)
    fake = _faker(rng.getrandbits(32))
    city = fake.city()
    clinic = f"{fake.last_name()}内科クリニック"
    hospital = f"{city}中央病院"
    pharmacy = f"{fake.last_name()}薬局 {fake.town()}店"
    specialty = rng.choice(("眼科", "整形外科", "皮膚科"))
    specialist = f"{fake.last_name()}{specialty}医院"
    checkup_site = f"{city}健診センター"

    records: list[ClinicalRecord] = []
    records += _drugs(rng, start, today, age, clinic, pharmacy)
    records += _checkups(rng, start, today, age, checkup_site)
    records += _treatments(rng, start, today, age, clinic, hospital, specialist, specialty)
    # Newest first; a day's lines keep the order they were made in (the sort is stable).
    records.sort(key=lambda r: r.on, reverse=True)
    return records


def _drugs(rng: random.Random, start: dt.date, today: dt.date, age: int,
           clinic: str, pharmacy: str) -> list[ClinicalRecord]:
    out: list[ClinicalRecord] = []
    fits = [d for d in _DRUGS if d.min_age <= age <= d.max_age]
    chronic = [d for d in fits if d.chronic]
    acute = [d for d in fits if not d.chronic]
    span = (today - start).days

    # Long-term prescriptions: more with age (none for most of the young).
    count = min(len(chronic), max(0, rng.choice((0, 0, 1, 1, 2, 3)) + (age - 30) // 20))
    for drug in rng.sample(chronic, count):
        interval = rng.choice(_CHRONIC_INTERVALS)
        source = rng.choice((pharmacy, pharmacy, clinic))
        day = start + dt.timedelta(days=rng.randrange(min(interval, span + 1)))
        while day <= today:
            out.append(ClinicalRecord(ConsentItem.DRUGS, day, drug.name,
                                      f"{drug.dose} {drug.timing} {interval}日分", source))
            day += dt.timedelta(days=interval)

    # Short courses: colds, pains, an antibiotic now and then.
    episodes = rng.randint(0, max(1, span // 120))
    for _ in range(episodes):
        day = start + dt.timedelta(days=rng.randrange(span + 1))
        for drug in rng.sample(acute, min(len(acute), rng.randint(1, 3))):
            if "頓用" in drug.timing:
                amount = f"{drug.dose} {drug.timing} {rng.choice(_PRN_TIMES)}回分"
            else:
                amount = f"{drug.dose} {drug.timing} {rng.choice(_ACUTE_DAYS)}日分"
            out.append(ClinicalRecord(ConsentItem.DRUGS, day, drug.name, amount, pharmacy))
    return out


def _checkups(rng: random.Random, start: dt.date, today: dt.date, age: int,
              site: str) -> list[ClinicalRecord]:
    out: list[ClinicalRecord] = []
    # The person's own baseline, then a small drift from year to year.
    bmi = rng.uniform(18.5, 30.5)
    waist_per_bmi = rng.uniform(3.4, 3.8)
    systolic = rng.uniform(105, 150) + max(0, age - 50) * 0.3
    hba1c = rng.uniform(5.0, 6.8)
    ldl = rng.uniform(80, 170)
    hdl = rng.uniform(38, 80)
    tg = rng.uniform(50, 220)
    alt = rng.uniform(10, 45)
    month, mday = rng.randint(4, 12), rng.randint(1, 28)  # the same season each year
    for year in range(start.year, today.year + 1):
        day = dt.date(year, month, mday)
        if not start <= day <= today or not _checkup_age(age, day, today):
            continue
        bmi += rng.uniform(-0.4, 0.5)
        systolic += rng.uniform(-6, 7)
        hba1c += rng.uniform(-0.2, 0.25)
        ldl += rng.uniform(-12, 12)
        diastolic = systolic * rng.uniform(0.58, 0.66)
        fasting = 60 + hba1c * rng.uniform(6.5, 7.5)
        ast = alt * rng.uniform(0.8, 1.2)
        measures = (
            ("BMI", f"{bmi:.1f} kg/m²"),
            ("腹囲", f"{bmi * waist_per_bmi:.1f} cm"),
            ("収縮期血圧", f"{systolic:.0f} mmHg"),
            ("拡張期血圧", f"{diastolic:.0f} mmHg"),
            ("HbA1c(NGSP)", f"{hba1c:.1f} %"),
            ("空腹時血糖", f"{fasting:.0f} mg/dL"),
            ("LDLコレステロール", f"{ldl:.0f} mg/dL"),
            ("HDLコレステロール", f"{hdl:.0f} mg/dL"),
            ("中性脂肪", f"{tg * rng.uniform(0.85, 1.15):.0f} mg/dL"),
            ("AST(GOT)", f"{ast:.0f} U/L"),
            ("ALT(GPT)", f"{alt * rng.uniform(0.85, 1.15):.0f} U/L"),
            ("γ-GT(γ-GTP)", f"{rng.uniform(12, 90):.0f} U/L"),
            ("尿糖", "(+)" if hba1c >= 7.0 and rng.random() < 0.5 else "(-)"),
            ("尿蛋白", rng.choice(("(-)", "(-)", "(-)", "(±)", "(+)"))),
        )
        out.extend(ClinicalRecord(ConsentItem.CHECKUPS, day, label, value, site)
                   for label, value in measures)
    return out


def _treatments(rng: random.Random, start: dt.date, today: dt.date, age: int, clinic: str,
                hospital: str, specialist: str, specialty: str) -> list[ClinicalRecord]:
    out: list[ClinicalRecord] = []
    span = (today - start).days
    visits = rng.randint(1, 4 + age // 10) if rng.random() < 0.9 else 0
    seen: set[tuple[str, str]] = set()
    # In date order, so a department's first visit is the 初診.
    days = sorted(start + dt.timedelta(days=rng.randrange(span + 1)) for _ in range(visits))
    for day in days:
        place = rng.choice((clinic, clinic, hospital, specialist))
        if place == clinic:
            department = "内科"
        elif place == specialist:
            department = specialty
        else:
            department = rng.choice(_HOSPITAL_DEPARTMENTS)
        first = (place, department) not in seen  # 初診 once per department
        seen.add((place, department))
        out.append(ClinicalRecord(ConsentItem.TREATMENTS, day, "初診料" if first else "再診料",
                                  f"{department} 外来", place))
        examinations = [p for p in _EXAMINATIONS
                        if p.department == department and p.min_age <= age]
        for exam in rng.sample(examinations, min(len(examinations), rng.randint(0, 2))):
            out.append(ClinicalRecord(ConsentItem.TREATMENTS, day, exam.label,
                                      f"{department} 外来", place))
    operations = [p for p in _OPERATIONS if p.min_age <= age]
    if operations and rng.random() < min(0.6, 0.1 + age / 150):
        op = rng.choice(operations)
        day = start + dt.timedelta(days=rng.randrange(span + 1))
        setting = f"入院{op.inpatient_days}日" if op.inpatient_days else "外来"
        out.append(ClinicalRecord(ConsentItem.TREATMENTS, day, op.label,
                                  f"{op.department} {setting}", hospital))
    return out


def _checkup_age(age: int, day: dt.date, today: dt.date) -> bool:
    """True when the person was 40-74 on ``day`` whatever the birthday: ``age`` is today's
    age, so on ``day`` it was ``age - years_back`` or one less."""
    years_back = today.year - day.year - ((today.month, today.day) < (day.month, day.day))
    return age - years_back - 1 >= CHECKUP_MIN_AGE and age - years_back <= CHECKUP_MAX_AGE


def _months_before(today: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier (the month's last day when shorter)."""
    index = today.year * 12 + today.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(today.day, calendar.monthrange(year, month)[1]))
