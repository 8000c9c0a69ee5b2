"""Synthetic loan applicants from one generative model with a latent creditworthiness z.

Every applicant gets z ~ N(0, 1). z tilts where they live, what they do, what they earn, how
much they already owe and to how many lenders, how often they were queried and late, and how
they behave on the channel; the default hazard in `outcomes.py` then uses z plus debt burden.
Because the model sees only what z leaks into the application, the gap between a trained
model's AUC and the latent PD's AUC is the honest measure of the model. The equations and
parameters are in docs/applicants.md.

Generation is vectorised: `generate_population` draws numpy columns (50,000 applicants in well
under a second) and `Population.applications()` renders them as JSON-ready dicts in the
`Application` schema. Names, phone numbers and resident IDs are synthetic, never real people.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from statistics import NormalDist
from types import MappingProxyType
from typing import Any

import numpy as np

from lendstack.core.errors import ValidationError
from lendstack.underwriting import identity
from lendstack.underwriting.outcomes import Hazard, Outcomes, draw_outcomes, reference_screen

# (city, province, 6-digit region code, tier). Codes keep the real province prefix; the rest is
# a plausible prefecture code, good enough for synthetic IDs.
CITIES: tuple[tuple[str, str, str, int], ...] = (
    ("Beijing", "Beijing", "110105", 1), ("Shanghai", "Shanghai", "310115", 1),
    ("Guangzhou", "Guangdong", "440106", 1), ("Shenzhen", "Guangdong", "440305", 1),
    ("Chengdu", "Sichuan", "510104", 2), ("Hangzhou", "Zhejiang", "330106", 2),
    ("Wuhan", "Hubei", "420106", 2), ("Nanjing", "Jiangsu", "320102", 2),
    ("Chongqing", "Chongqing", "500103", 2), ("Xi'an", "Shaanxi", "610113", 2),
    ("Tianjin", "Tianjin", "120101", 2), ("Suzhou", "Jiangsu", "320505", 2),
    ("Changsha", "Hunan", "430102", 2), ("Zhengzhou", "Henan", "410105", 2),
    ("Qingdao", "Shandong", "370202", 2), ("Shenyang", "Liaoning", "210102", 2),
    ("Dongguan", "Guangdong", "441900", 2), ("Hefei", "Anhui", "340104", 2),
    ("Kunming", "Yunnan", "530102", 3), ("Jinan", "Shandong", "370102", 3),
    ("Xiamen", "Fujian", "350203", 3), ("Fuzhou", "Fujian", "350102", 3),
    ("Harbin", "Heilongjiang", "230102", 3), ("Changchun", "Jilin", "220102", 3),
    ("Shijiazhuang", "Hebei", "130102", 3), ("Nanning", "Guangxi", "450102", 3),
    ("Guiyang", "Guizhou", "520102", 3), ("Nanchang", "Jiangxi", "360102", 3),
    ("Taiyuan", "Shanxi", "140105", 3), ("Lanzhou", "Gansu", "620102", 3),
    ("Urumqi", "Xinjiang", "650102", 3), ("Hohhot", "Inner Mongolia", "150102", 3),
    ("Haikou", "Hainan", "460105", 3), ("Wenzhou", "Zhejiang", "330302", 3),
    ("Luoyang", "Henan", "410302", 4), ("Yichang", "Hubei", "420502", 4),
    ("Mianyang", "Sichuan", "510703", 4), ("Ganzhou", "Jiangxi", "360702", 4),
    ("Baoding", "Hebei", "130602", 4), ("Liuzhou", "Guangxi", "450202", 4),
    ("Zunyi", "Guizhou", "520302", 4), ("Qujing", "Yunnan", "530302", 4),
    ("Baoji", "Shaanxi", "610302", 4), ("Tianshui", "Gansu", "620502", 4),
    ("Daqing", "Heilongjiang", "230602", 4), ("Datong", "Shanxi", "140213", 4),
    ("Baotou", "Inner Mongolia", "150202", 4), ("Fuyang", "Anhui", "341202", 4),
    ("Zhanjiang", "Guangdong", "440802", 4), ("Linyi", "Shandong", "371302", 4),
    ("Yancheng", "Jiangsu", "320902", 4), ("Yueyang", "Hunan", "430602", 4),
    ("Xining", "Qinghai", "630102", 4), ("Yinchuan", "Ningxia", "640104", 4),
    ("Lhasa", "Tibet", "540102", 4), ("Jilin", "Jilin", "220202", 4),
    ("Anshan", "Liaoning", "210302", 4), ("Quanzhou", "Fujian", "350502", 4),
)  # fmt: skip

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
)
_GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰鹏辉建文斌宇浩凯欣怡晨阳雪琳婷佳俊博子涵梓轩思雨"

EMPLOYMENTS = ("salaried", "civil_servant", "self_employed", "gig", "unemployed")
_EMP_SHARE = np.log([0.58, 0.06, 0.18, 0.14, 0.04])
_EMP_Z = np.array([0.2, 0.6, 0.0, -0.4, -0.9])
_INCOME_SHIFT = {"civil_servant": 0.05, "self_employed": 0.10, "gig": -0.25,
                 "unemployed": -1.2, "retired": -0.45}  # fmt: skip
_TIER_MEDIAN_INCOME = np.log([1.0, 12_000.0, 8_500.0, 6_500.0, 5_000.0])
TERMS = np.array([3, 6, 12, 24])
_TERM_SHARE = np.log([0.20, 0.30, 0.40, 0.10])
METHODS = ("equal-installment", "equal-principal", "interest-free-fee", "bullet")
_METHOD_SHARE = (0.70, 0.10, 0.15, 0.05)
ALLOWED_PURPOSES = ("daily_consumption", "home_furnishing", "education", "travel", "medical",
                    "electronics")  # fmt: skip
_ALLOWED_SHARE = (0.40, 0.15, 0.07, 0.10, 0.06, 0.22)
FORBIDDEN_PURPOSES = ("house_purchase", "mortgage_repayment", "securities", "asset_management",
                      "equity_investment", "loan_repayment", "speculation")  # fmt: skip
_FORBIDDEN_SHARE = (0.15, 0.10, 0.20, 0.10, 0.05, 0.25, 0.15)
LENDERS = ("bank", "consumer_finance_company", "online_microlender")
_LENDER_Z = np.array([0.4, 0.0, -0.4])
CHANNELS = ("mall-app", "payment-app", "super-app", "food-delivery-app", "ride-hailing-app",
            "short-video-app", "search-app")  # fmt: skip
_CHANNEL_SHARE = (0.25, 0.25, 0.15, 0.12, 0.08, 0.10, 0.05)


def _check_shares(name: str, shares: tuple[float, ...], size: int) -> None:
    if len(shares) != size or any(s < 0 for s in shares) or not math.isclose(sum(shares), 1.0):
        raise ValidationError(f"needs {size} non-negative shares summing to 1", field=name)


@dataclass(frozen=True, slots=True)
class PopulationConfig:
    """What to generate. Defaults reproduce the calibration in docs/applicants.md."""

    seed: int = 7
    n: int = 20_000
    start: date = date(2025, 10, 1)
    months: int = 12
    """Application dates are uniform over [start, start + months)."""
    tier_shares: tuple[float, float, float, float] = (0.15, 0.30, 0.30, 0.25)
    lender_shares: tuple[float, float, float] = (0.45, 0.30, 0.25)
    student_share_young: float = 0.25
    """Share of students among applicants aged 18–23."""
    forbidden_purpose_scale: float = 0.15
    """P(declares a forbidden purpose) = scale × speculation propensity (≈ 2% overall)."""
    refuse_automated_share: float = 0.015
    hazard: Hazard = field(default_factory=Hazard)

    def __post_init__(self) -> None:
        if not 1 <= self.n <= 5_000_000:
            raise ValidationError("must be 1..5,000,000", field="n")
        if not 1 <= self.months <= 120:
            raise ValidationError("must be 1..120", field="months")
        _check_shares("tier_shares", self.tier_shares, 4)
        _check_shares("lender_shares", self.lender_shares, 3)
        for name in ("student_share_young", "forbidden_purpose_scale", "refuse_automated_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValidationError("must be in [0, 1]", field=name)


@dataclass(frozen=True, slots=True)
class Population:
    """Applicants as numpy columns (money in integer fen), their latent traits and outcomes."""

    config: PopulationConfig
    columns: Mapping[str, np.ndarray]
    outcomes: Outcomes

    def __len__(self) -> int:
        return self.config.n

    @property
    def speculation(self) -> np.ndarray:
        """Propensity (0–1) to divert funds to speculation; the simulator reuses it."""
        return self.columns["speculation"]

    @property
    def screened(self) -> np.ndarray:
        """bool: passes the reference knock-out screen the bad-rate target is calibrated on."""
        return reference_screen(dict(self.columns), self.outcomes.burden)

    def applications(self) -> Iterator[dict[str, Any]]:
        """Each applicant as a JSON-able dict in the `Application` schema, in row order."""
        lists = {k: v.tolist() for k, v in self.columns.items() if k in _RENDERED}
        dates = self.columns["application_date"].astype(str).tolist()
        for i in range(self.config.n):
            yield _render({k: v[i] for k, v in lists.items()}, dates[i])


_RENDERED = frozenset({
    "name", "resident_id", "mobile", "province", "city", "monthly_income_fen", "employment",
    "is_student", "monthly_obligations_fen", "amount_fen", "term_months", "repayment_method",
    "purpose", "inquiries_3m", "inquiries_6m", "inquiries_12m", "active_lenders",
    "unsecured_balance_fen", "worst_dpd_24m", "credit_history_months", "months_active",
    "monthly_spend_fen", "on_time_share", "consent_bureau", "consent_automated",
    "consent_sharing", "channel", "lender_type",
})  # fmt: skip


def _money(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _render(r: dict[str, Any], application_date: str) -> dict[str, Any]:
    return {
        "applicant": {
            "name": r["name"], "resident_id": r["resident_id"], "mobile": r["mobile"],
            "province": r["province"], "city": r["city"],
            "monthly_income": _money(r["monthly_income_fen"]),
            "employment_type": r["employment"], "is_student": r["is_student"],
            "monthly_obligations": _money(r["monthly_obligations_fen"]),
        },
        "loan": {
            "amount": _money(r["amount_fen"]), "term_months": r["term_months"],
            "repayment_method": r["repayment_method"], "purpose": r["purpose"],
        },
        "bureau": {
            "inquiries_3m": r["inquiries_3m"], "inquiries_6m": r["inquiries_6m"],
            "inquiries_12m": r["inquiries_12m"], "active_lenders": r["active_lenders"],
            "unsecured_balance": _money(r["unsecured_balance_fen"]),
            "worst_dpd_24m": r["worst_dpd_24m"],
            "credit_history_months": r["credit_history_months"],
        },
        "platform": {
            "months_active": r["months_active"],
            "monthly_spend": _money(r["monthly_spend_fen"]),
            "on_time_share": r["on_time_share"],
        },
        "consents": {
            "bureau_query": r["consent_bureau"],
            "automated_decision": r["consent_automated"],
            "data_sharing": r["consent_sharing"],
        },
        "channel": r["channel"],
        "lender_type": r["lender_type"],
        "application_date": application_date,
    }  # fmt: skip


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _choice_logit(rng: np.random.Generator, utility: np.ndarray) -> np.ndarray:
    """Multinomial-logit draw per row via the Gumbel-max trick (one vectorised argmax)."""
    return np.asarray(np.argmax(utility + rng.gumbel(size=utility.shape), axis=1))


def _yuan_to_fen(yuan: np.ndarray, step: float = 1.0) -> np.ndarray:
    """Round to `step` yuan (people state round numbers) and convert to integer fen."""
    return (np.round(yuan / step) * step * 100).astype(np.int64)


def _geography(rng: np.random.Generator, z: np.ndarray, cfg: PopulationConfig) -> dict[str, Any]:
    """City tier from an ordered probit on 0.4·z + noise (better credit, bigger city)."""
    u = 0.4 * z + math.sqrt(1 - 0.16) * rng.standard_normal(len(z))
    cuts = [NormalDist().inv_cdf(c) for c in np.cumsum(cfg.tier_shares[::-1])[:-1]]
    tier = 4 - np.searchsorted(cuts, u)
    city = np.empty(len(z), dtype=np.int64)
    for t in range(1, 5):
        members = np.array([i for i, c in enumerate(CITIES) if c[3] == t])
        rows = tier == t
        city[rows] = members[rng.integers(0, len(members), int(rows.sum()))]
    table = np.array(CITIES, dtype=object)
    return {"city_tier": tier, "city": table[city, 0].astype(str),
            "province": table[city, 1].astype(str), "region": table[city, 2].astype(str)}  # fmt: skip


def _dates(rng: np.random.Generator, z: np.ndarray, cfg: PopulationConfig) -> dict[str, Any]:
    """Application dates, then birth dates from a right-skewed age (mean ≈ 31, older if z)."""
    n = len(z)
    applied = np.datetime64(cfg.start, "D") + rng.integers(0, _span_days(cfg), n)
    years = np.clip(18.01 + rng.gamma(3.0, 4.3, n) + 1.2 * z, 18.01, 60.9)
    born = _adult(applied - (years * 365.25).astype(np.int64), cfg, rng.integers(0, 365, n))
    return {"application_date": applied, "birth_date": born, "age": _completed_years(born, applied)}


def _span_days(cfg: PopulationConfig) -> int:
    """Days in [start, start + months): the span the application dates are drawn from."""
    start = np.datetime64(cfg.start, "D")
    end_month = np.datetime64(cfg.start, "M") + cfg.months
    return int((end_month.astype("datetime64[D]") + (cfg.start.day - 1) - start).astype(int))


def _adult(born: np.ndarray, cfg: PopulationConfig, jitter: np.ndarray) -> np.ndarray:
    """Birth dates moved so that every borrower is 18..60 on every day of the span: the
    simulator re-dates a borrower's application to any month of it, and a borrower who was
    18 on their drawn date could otherwise be a minor in an earlier month. A moved date lands
    `jitter` (0..364) days inside its bound rather than on it: the birth date is part of the
    resident ID, and one shared date would give many borrowers the same ID."""
    first = cfg.start
    last = first + timedelta(days=_span_days(cfg) - 1)
    earliest = np.datetime64(_years_before(last, 61) + timedelta(days=1), "D")  # 60 at the end
    latest = np.datetime64(_years_before(first, 18), "D")  # 18 on the first day
    born = np.where(born > latest, latest - jitter, born)
    return np.where(born < earliest, earliest + jitter, born)


def _years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (29 February falls back to the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _completed_years(born: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Vectorised `identity.age_on`: year difference, less one if the birthday is still ahead."""
    by, oy = born.astype("datetime64[Y]"), on.astype("datetime64[Y]")
    bm = (born.astype("datetime64[M]") - by.astype("datetime64[M]")).astype(int)
    om = (on.astype("datetime64[M]") - oy.astype("datetime64[M]")).astype(int)
    bd = (born - born.astype("datetime64[M]").astype("datetime64[D]")).astype(int)
    od = (on - on.astype("datetime64[M]").astype("datetime64[D]")).astype(int)
    ahead = (om < bm) | ((om == bm) & (od < bd))
    return np.asarray((oy - by).astype(int) - ahead.astype(int))


def _work(rng: np.random.Generator, z: np.ndarray, age: np.ndarray, cfg: PopulationConfig) -> Any:
    """Students (some of the 18–23s), retirees (half of the 55+), else a logit in z."""
    n = len(z)
    student = (age <= 23) & (rng.random(n) < cfg.student_share_young)
    retired = ~student & (age >= 55) & (rng.random(n) < 0.5)
    pick = _choice_logit(rng, _EMP_SHARE + np.outer(z, _EMP_Z))
    employment = np.array(EMPLOYMENTS, dtype=object)[pick]
    employment[student] = "student"
    employment[retired] = "retired"
    return {"employment": employment.astype(str), "is_student": student}


def _income(rng: np.random.Generator, z: np.ndarray, c: dict[str, Any]) -> np.ndarray:
    """Log-normal by city tier, +0.22 per SD of z, by occupation, peaking at age 42 (fen)."""
    n = len(z)
    emp = c["employment"]
    shift = np.zeros(n)
    for name, value in _INCOME_SHIFT.items():
        shift[emp == name] = value
    spread = np.where(emp == "self_employed", 0.55, 0.38)
    log_income = (
        _TIER_MEDIAN_INCOME[c["city_tier"]] + 0.22 * z + shift
        - 0.0006 * (c["age"] - 42) ** 2 + spread * rng.standard_normal(n)
    )  # fmt: skip
    student = np.log(1_800.0) + 0.3 * rng.standard_normal(n)
    log_income = np.where(c["is_student"], student, log_income)
    return _yuan_to_fen(np.maximum(np.exp(log_income), 500.0), step=100.0)


def _bureau(rng: np.random.Generator, z: np.ndarray, c: dict[str, Any]) -> dict[str, Any]:
    """Credit history, delinquency and nested inquiry windows (3m ⊆ 6m ⊆ 12m)."""
    n, age = len(z), c["age"]
    thin = rng.random(n) < np.where(c["is_student"], 0.4, np.where(age < 23, 0.25, 0.07))
    share = _sigmoid(0.6 + 0.3 * z + 0.7 * rng.standard_normal(n))
    history = np.where(thin, 0, np.maximum(1, (share * (age - 18) * 12).astype(np.int64)))
    any_late = ~thin & (rng.random(n) < _sigmoid(-2.3 - 1.1 * z))
    severity = np.exp(np.log(8.0) - 0.5 * z + 1.1 * rng.standard_normal(n))
    worst = np.where(any_late, np.clip(np.ceil(severity), 1, 720), 0).astype(np.int64)
    rate12 = np.exp(0.8 - 0.45 * z) * rng.gamma(3.0, 1 / 3.0, n)
    inq12 = rng.poisson(rate12)
    inq6 = rng.binomial(inq12, _sigmoid(-0.2 * z))
    inq3 = rng.binomial(inq6, _sigmoid(-0.2 * z))
    return {"credit_history_months": history, "worst_dpd_24m": worst, "inquiries_3m": inq3,
            "inquiries_6m": inq6, "inquiries_12m": inq12}  # fmt: skip


def _debts(rng: np.random.Generator, z: np.ndarray, c: dict[str, Any]) -> dict[str, Any]:
    """Multi-lender borrowing (多头借贷) grows as z falls; obligations add any mortgage (fen)."""
    n = len(z)
    income = c["monthly_income_fen"] / 100.0
    hustle = np.isin(c["employment"], ("gig", "self_employed"))
    rate = np.exp(0.35 - 0.5 * z + 0.25 * hustle) * rng.gamma(2.0, 0.5, n)
    lenders = np.where(c["credit_history_months"] == 0, 0, np.minimum(rng.poisson(rate), 30))
    per_lender = np.exp(np.log(0.9 * income) - 0.2 * z + 0.6 * rng.standard_normal(n))
    balance = _yuan_to_fen(lenders * per_lender, step=100.0)
    p_mortgage = _sigmoid(-2.0 + 0.6 * z + 0.05 * (c["age"] - 30) + 0.3 * (c["city_tier"] <= 2))
    mortgage = np.where(
        ~c["is_student"] & (rng.random(n) < p_mortgage), income * rng.uniform(0.2, 0.4, n), 0.0
    )
    service = balance / 100.0 * rng.uniform(0.07, 0.12, n)
    return {"active_lenders": lenders, "unsecured_balance_fen": balance,
            "monthly_obligations_fen": _yuan_to_fen(service + mortgage)}  # fmt: skip


def _platform(rng: np.random.Generator, z: np.ndarray, c: dict[str, Any]) -> dict[str, Any]:
    """Tenure on the channel, spend (≈ 12% of income) and on-time share (falls with z)."""
    n = len(z)
    months = np.minimum(rng.exponential(np.exp(3.2 + 0.15 * z)), 180).astype(np.int64)
    spend = c["monthly_income_fen"] * np.exp(np.log(0.12) + 0.5 * rng.standard_normal(n))
    late = _sigmoid(-4.2 - 1.1 * z + 0.5 * rng.standard_normal(n))
    return {"months_active": months,
            "monthly_spend_fen": np.where(months > 0, np.round(spend), 0).astype(np.int64),
            "on_time_share": np.where(months > 0, np.round(1.0 - late, 3), 1.0)}  # fmt: skip


def _loan(rng: np.random.Generator, z: np.ndarray, c: dict[str, Any]) -> dict[str, Any]:
    """Ticket log-normal around 7k (elastic 0.4 to income); bigger tickets, longer terms."""
    n = len(z)
    income = c["monthly_income_fen"] / 100.0
    log_amount = np.log(7_000) + 0.4 * np.log(income / 7_000) - 0.1 * z
    amount = np.clip(np.exp(log_amount + 0.65 * rng.standard_normal(n)), 500, 200_000)
    tilt = np.log(amount / 7_000)[:, None] * np.array([-0.75, -0.25, 0.25, 0.75])
    term = TERMS[_choice_logit(rng, _TERM_SHARE + tilt)]
    method = np.array(METHODS)[rng.choice(len(METHODS), n, p=_METHOD_SHARE)]
    term = np.where((method == "bullet") & (term > 12), 12, term)
    return {"amount_fen": _yuan_to_fen(amount, step=100.0), "term_months": term,
            "repayment_method": method}  # fmt: skip


def _purpose(
    rng: np.random.Generator, z: np.ndarray, c: dict[str, Any], cfg: PopulationConfig
) -> Any:
    """Speculation propensity s; a forbidden purpose is declared with probability scale·s."""
    n = len(z)
    s = _sigmoid(-2.3 + 0.9 * rng.standard_normal(n) - 0.25 * z + 0.3 * (c["age"] < 35))
    forbidden = rng.random(n) < cfg.forbidden_purpose_scale * s
    allowed = np.array(ALLOWED_PURPOSES)[rng.choice(6, n, p=_ALLOWED_SHARE)]
    banned = np.array(FORBIDDEN_PURPOSES)[rng.choice(7, n, p=_FORBIDDEN_SHARE)]
    return {"speculation": s, "forbidden_purpose": forbidden,
            "purpose": np.where(forbidden, banned, allowed)}  # fmt: skip


def _context(rng: np.random.Generator, z: np.ndarray, cfg: PopulationConfig) -> dict[str, Any]:
    """Consents (almost always given), lender type (banks take better z) and channel."""
    n = len(z)
    lender = _choice_logit(rng, np.log(cfg.lender_shares) + np.outer(z, _LENDER_Z))
    return {
        "consent_bureau": rng.random(n) >= 0.002,
        "consent_sharing": rng.random(n) >= 0.01,
        "consent_automated": rng.random(n) >= cfg.refuse_automated_share,
        "lender_type": np.array(LENDERS)[lender],
        "channel": np.array(CHANNELS)[rng.choice(len(CHANNELS), n, p=_CHANNEL_SHARE)],
    }


def _identity(rng: np.random.Generator, c: dict[str, Any]) -> dict[str, Any]:
    """Synthetic name, mobile and checksum-valid resident ID (odd sequence = male)."""
    n = len(c["age"])
    male = rng.random(n) < 0.5
    surname = rng.integers(0, len(_SURNAMES), n).tolist()
    given = rng.integers(0, len(_GIVEN), (n, 2)).tolist()
    two = (rng.random(n) < 0.7).tolist()
    names = [_SURNAMES[s] + _GIVEN[g[0]] + (_GIVEN[g[1]] if t else "")
             for s, g, t in zip(surname, given, two, strict=True)]  # fmt: skip
    second = rng.integers(3, 10, n).tolist()
    rest = rng.integers(0, 10**9, n).tolist()
    mobiles = [f"1{a}{b:09d}" for a, b in zip(second, rest, strict=True)]
    sequence = (rng.integers(0, 500, n) * 2 + male).tolist()
    born = c["birth_date"].astype(object).tolist()
    ids = [identity.make_resident_id(r, b, s)
           for r, b, s in zip(c["region"].tolist(), born, sequence, strict=True)]  # fmt: skip
    return {"male": male, "name": np.array(names), "mobile": np.array(mobiles),
            "resident_id": np.array(ids)}  # fmt: skip


def generate_population(config: PopulationConfig | None = None) -> Population:
    """Draw a population. Each block has its own random stream, so the same seed gives the
    same applicants, and changing how one block draws leaves the others' draws alone."""
    cfg = config or PopulationConfig()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(13)]
    z = streams[0].standard_normal(cfg.n)
    c: dict[str, Any] = {}
    c |= _geography(streams[1], z, cfg)
    c |= _dates(streams[2], z, cfg)
    c |= _work(streams[3], z, c["age"], cfg)
    c["monthly_income_fen"] = _income(streams[4], z, c)
    c |= _bureau(streams[5], z, c)
    c |= _debts(streams[6], z, c)
    c |= _platform(streams[7], z, c)
    c |= _loan(streams[8], z, c)
    c |= _purpose(streams[9], z, c, cfg)
    c |= _context(streams[10], z, cfg)
    c |= _identity(streams[11], c)
    outcomes = draw_outcomes(c, z, cfg.hazard, streams[12])
    return Population(cfg, MappingProxyType(c), outcomes)
