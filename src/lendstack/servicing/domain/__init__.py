"""Pure servicing domain: products, schedules, allocation, delinquency."""
