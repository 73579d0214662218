"""The output contract: what a valid output is, at the text and at the token level."""

from cliffaudit.contract.strict import StrictVerdict, strict_validate

__all__ = ["StrictVerdict", "strict_validate"]
