"""Pure servicing domain: products, schedules, payment allocation and delinquency.

Nothing here touches a database, a clock or a framework; services call these functions with
business dates and values, and storage maps the results. Import from this package, not from
its modules: the modules are an implementation detail.
"""

from lendstack.servicing.domain.delinquency import (
    DEFAULT_BUCKETS,
    DEFAULT_PROFILE_ID,
    Bucket,
    BucketScheme,
    ClassificationProfile,
    RiskClass,
    bucket_of,
    builtin_profiles,
    default_profile,
    get_profile,
    load_profile,
)
from lendstack.servicing.domain.products import (
    PENALTY_MULTIPLIER_MAX,
    PENALTY_MULTIPLIER_MIN,
    Product,
    ProductCatalog,
    builtin_products,
    load_product,
)
from lendstack.servicing.domain.schedule import (
    LEVEL_METHODS,
    MAX_TERM_MONTHS,
    Installment,
    LoanTerms,
    PrepaymentMode,
    RepaymentMethod,
    Schedule,
    annuity_payment,
    generate,
    level_installment,
    reamortize,
)
from lendstack.servicing.domain.waterfall import (
    DEFAULT_ORDER,
    Allocation,
    Component,
    allocate,
    validate_order,
)

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_ORDER",
    "DEFAULT_PROFILE_ID",
    "LEVEL_METHODS",
    "MAX_TERM_MONTHS",
    "PENALTY_MULTIPLIER_MAX",
    "PENALTY_MULTIPLIER_MIN",
    "Allocation",
    "Bucket",
    "BucketScheme",
    "ClassificationProfile",
    "Component",
    "Installment",
    "LoanTerms",
    "PrepaymentMode",
    "Product",
    "ProductCatalog",
    "RepaymentMethod",
    "RiskClass",
    "Schedule",
    "allocate",
    "annuity_payment",
    "bucket_of",
    "builtin_products",
    "builtin_profiles",
    "default_profile",
    "generate",
    "get_profile",
    "level_installment",
    "load_product",
    "load_profile",
    "reamortize",
    "validate_order",
]
