"""Mainland China's province-level divisions: the codes resident IDs start with, and names.

Applications, partner appetites and local-bank home regions all name provinces; one table
keeps them from drifting apart.
"""

from __future__ import annotations

PROVINCE_CODES: dict[str, str] = {
    "11": "Beijing", "12": "Tianjin", "13": "Hebei", "14": "Shanxi", "15": "Inner Mongolia",
    "21": "Liaoning", "22": "Jilin", "23": "Heilongjiang", "31": "Shanghai", "32": "Jiangsu",
    "33": "Zhejiang", "34": "Anhui", "35": "Fujian", "36": "Jiangxi", "37": "Shandong",
    "41": "Henan", "42": "Hubei", "43": "Hunan", "44": "Guangdong", "45": "Guangxi",
    "46": "Hainan", "50": "Chongqing", "51": "Sichuan", "52": "Guizhou", "53": "Yunnan",
    "54": "Tibet", "61": "Shaanxi", "62": "Gansu", "63": "Qinghai", "64": "Ningxia",
    "65": "Xinjiang",
}  # fmt: skip
"""The first two digits of a resident ID: the 31 mainland province-level divisions."""

PROVINCES: frozenset[str] = frozenset(PROVINCE_CODES.values())
"""The 31 names, as applications, partner appetites and home regions spell them."""
