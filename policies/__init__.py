"""Strategy objects that order a request's candidates (cheapest, fastest, failover, rate-limit aware)."""

__all__: list[str] = []
