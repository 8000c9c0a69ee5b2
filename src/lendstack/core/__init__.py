"""Shared kernel: money, dates, day counts, rates and the error tree.

Everything here is pure: no I/O, no clock, no frameworks.
"""
