"""Rate-limit tiers: the limits a gateway account is held to."""

from __future__ import annotations

from typing import ClassVar

import attrs

from ._errors import ConfigError

__all__ = ["Tier"]


def _positive_or_none(instance: object, attribute: attrs.Attribute[int | None], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"Tier.{attribute.name} must be a whole number or None, not {value!r}")
    if value <= 0:
        raise ConfigError(f"Tier.{attribute.name} must be positive, not {value!r}")


@attrs.frozen
class Tier:
    """The limits of one gateway account; ``None`` means no client-side limit.

    Args:
        rpm: requests per minute.
        tpm: tokens (prompt + completion) per minute.
        concurrency: requests in flight at once.

    Presets are OneAI's published tiers: ``Tier.FREE`` (20 RPM, 200K TPM,
    2 concurrent) and ``Tier.PRO`` (200 RPM, 2M TPM, 10 concurrent). A gateway
    with no tier is not limited by the client.

    Raises:
        ConfigError: when a limit is not a positive whole number.
    """

    rpm: int | None = attrs.field(default=None, validator=_positive_or_none)
    tpm: int | None = attrs.field(default=None, validator=_positive_or_none)
    concurrency: int | None = attrs.field(default=None, validator=_positive_or_none)

    FREE: ClassVar[Tier]
    PRO: ClassVar[Tier]

    @property
    def unlimited(self) -> bool:
        """True when the tier sets no limit at all."""
        return self.rpm is None and self.tpm is None and self.concurrency is None


# OneAI "Rate Limits" table (shared/seeds/001): Free 20 / 200K / 2, Pro 200 / 2M / 10.
Tier.FREE = Tier(rpm=20, tpm=200_000, concurrency=2)
Tier.PRO = Tier(rpm=200, tpm=2_000_000, concurrency=10)
