"""Basel IRB retail capital and the Vasicek single-factor model it rests on.

The IRB risk-weight functions (BCBS Basel Framework CRE31.14-31.16) are the Vasicek model read
at one point: the default rate of a large pool when the systematic factor sits at its
1-in-1,000 value, less the expected part (PD x LGD), which provisions cover. The stress test
reads the same model at the factor a macro scenario implies, so both live here and share one
`vasicek_pd`.

Figures are floats: these are model quantities, never balances. The caller turns RWA into
money (Decimal, to the fen) at its edge. Inputs out of range raise `ValidationError` naming
the argument, so a bad PD from a data file never becomes a silent NaN.
"""

from __future__ import annotations

import math
from enum import StrEnum
from statistics import NormalDist

from lendstack.core.errors import ValidationError

__all__ = [
    "BASEL2_PD_FLOOR",
    "CONFIDENCE",
    "PRODUCT_ASSET_CLASSES",
    "UNSECURED_LGD_FLOOR",
    "AssetClass",
    "asset_class_for",
    "capital_requirement",
    "correlation",
    "pd_floor",
    "quarterly_pd",
    "risk_weight",
    "risk_weighted_assets",
    "vasicek_pd",
]

CONFIDENCE = 0.999
"""The IRB formulas hold capital for the systematic factor's 99.9th percentile (CRE31.14-16)."""

BASEL2_PD_FLOOR = 0.0003
"""Basel II floored every retail PD at 3 bp; pass it as `pd_floor=` to reproduce Basel II."""

_N = NormalDist()
_G_TAIL = _N.inv_cdf(1 - CONFIDENCE)
"""G(0.001) = -G(0.999): the factor value at which K is read."""


class AssetClass(StrEnum):
    """The three IRB retail sub-classes; each has its own correlation (CRE31.14-31.16)."""

    RESIDENTIAL_MORTGAGE = "residential-mortgage"
    QUALIFYING_REVOLVING = "qualifying-revolving"
    OTHER_RETAIL = "other-retail"


_PD_FLOORS = {
    AssetClass.RESIDENTIAL_MORTGAGE: 0.0005,
    AssetClass.QUALIFYING_REVOLVING: 0.001,
    AssetClass.OTHER_RETAIL: 0.0005,
}
"""Basel III floors (CRE32.58): 0.1 % for QRRE revolvers, 0.05 % for every other retail pool.
All QRRE is treated as revolvers (a transactor's 0.05 % would need repayment data per pool)."""

UNSECURED_LGD_FLOOR = {
    AssetClass.RESIDENTIAL_MORTGAGE: 0.05,
    AssetClass.QUALIFYING_REVOLVING: 0.50,
    AssetClass.OTHER_RETAIL: 0.30,
}
"""Basel III floors on own-estimate retail LGDs (CRE32.58), for callers that estimate LGD.
They are not applied inside `capital_requirement`: the LGD passed in is used as given."""

PRODUCT_ASSET_CLASSES = {
    "cash-loan-installment": AssetClass.OTHER_RETAIL,
    "consumer-loan-equal-principal": AssetClass.OTHER_RETAIL,
    "guaranteed-installment": AssetClass.OTHER_RETAIL,
    "short-term-bullet": AssetClass.OTHER_RETAIL,
    "business-loan-interest-first": AssetClass.OTHER_RETAIL,
    "huabei-installment": AssetClass.QUALIFYING_REVOLVING,
}
"""Shipped products (servicing/products/*.toml) to their IRB retail class. Term loans are
"other retail"; small-business loans under the retail size limit are too (CRE30.19). Huabei
installments are drawn on a revolving, unsecured, cancellable line, hence QRRE."""


def asset_class_for(product: str) -> AssetClass:
    """The IRB class of a product id; unknown products fall back to other retail.

    Other retail is the catch-all class for unsecured consumer credit and, below PD ~30 %,
    carries more capital than QRRE, so an unmapped product is never under-capitalised
    relative to the revolving treatment.
    """
    return PRODUCT_ASSET_CLASSES.get(product, AssetClass.OTHER_RETAIL)


def pd_floor(asset_class: AssetClass) -> float:
    """The Basel III minimum PD for a retail pool of this class (CRE32.58)."""
    return _PD_FLOORS[AssetClass(asset_class)]


def correlation(asset_class: AssetClass, pd: float) -> float:
    """Asset correlation R: how strongly the pool's defaults move with the economy.

    Mortgages 0.15 and QRRE 0.04 are fixed; other retail slides from 0.16 at PD 0 to 0.03 at
    high PD, because poor borrowers default for personal more than systemic reasons.
    """
    _check_unit(pd, "pd")
    match AssetClass(asset_class):
        case AssetClass.RESIDENTIAL_MORTGAGE:
            return 0.15
        case AssetClass.QUALIFYING_REVOLVING:
            return 0.04
        case AssetClass.OTHER_RETAIL:
            weight = -math.expm1(-35 * pd) / -math.expm1(-35)
            return 0.03 * weight + 0.16 * (1 - weight)


def vasicek_pd(pd: float, correlation: float, z: float, residual_sd: float = 0.0) -> float:
    """The 12-month default rate when the systematic factor Z ~ N(z, residual_sd**2).

    With residual_sd = 0 this is Vasicek's conditional PD N((G(PD) - sqrt(R) z) / sqrt(1 - R)).
    With residual_sd = 1 the factor's remaining uncertainty is averaged over, which gives
    N(G(PD) - sqrt(R) z): at z = 0 that is PD itself, the unconditional mean. z < 0 is stress.
    """
    _check_unit(pd, "pd")
    _check_correlation(correlation)
    _check_unit(residual_sd, "residual_sd")
    if not math.isfinite(z):
        raise ValidationError(f"must be a finite number, got {z}", field="z")
    if pd in (0.0, 1.0):
        return pd
    spread = math.sqrt(1 - correlation + correlation * residual_sd**2)
    return _N.cdf((_N.inv_cdf(pd) - math.sqrt(correlation) * z) / spread)


def quarterly_pd(annual_pd: float) -> float:
    """The one-quarter default probability with a constant hazard over the year.

    1 - (1 - PD)^(1/4): four quarters at this rate compound back to exactly the annual PD.
    """
    _check_unit(annual_pd, "pd")
    return -math.expm1(0.25 * math.log1p(-annual_pd)) if annual_pd < 1 else 1.0


def capital_requirement(
    pd: float, lgd: float, asset_class: AssetClass, *, floor: float | None = None
) -> float:
    """K per unit of EAD for a retail pool (CRE31.14-31.16); no maturity adjustment for retail.

    K = LGD x [N((G(PD) + sqrt(R) G(0.999)) / sqrt(1 - R)) - PD]. The PD is floored first
    (`floor`, default the Basel III floor of the class). A defaulted pool (PD = 1) gets K = 0:
    CRE31.3 sets K = max(0, LGD - best-estimate EL), and with no separate BEEL estimate the
    best estimate is the LGD itself, so all of the loss is expected and provisioned.
    """
    _check_unit(lgd, "lgd")
    _check_unit(pd, "pd")
    if pd >= 1:
        return 0.0
    floored = max(pd, pd_floor(asset_class) if floor is None else floor)
    r = correlation(asset_class, floored)
    tail = vasicek_pd(floored, r, _G_TAIL)
    return max(0.0, lgd * (tail - floored))


def risk_weight(
    pd: float, lgd: float, asset_class: AssetClass, *, floor: float | None = None
) -> float:
    """RWA per unit of EAD: 12.5 x K (12.5 = 1 / 8 %, the minimum total capital ratio)."""
    return 12.5 * capital_requirement(pd, lgd, asset_class, floor=floor)


def risk_weighted_assets(
    ead: float, pd: float, lgd: float, asset_class: AssetClass, *, floor: float | None = None
) -> float:
    """RWA = 12.5 x K x EAD (CRE31.14-31.16), as a float; the caller rounds it to money."""
    if not math.isfinite(ead) or ead < 0:
        raise ValidationError(f"must be a number >= 0, got {ead}", field="ead")
    return ead * risk_weight(pd, lgd, asset_class, floor=floor)


def _check_unit(value: float, field: str) -> None:
    if not 0 <= value <= 1:  # also refuses NaN
        raise ValidationError(f"must be in [0, 1], got {value}", field=field)


def _check_correlation(value: float) -> None:
    if not 0 <= value < 1:
        raise ValidationError(f"must be in [0, 1), got {value}", field="correlation")
