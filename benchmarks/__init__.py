"""The benchmark harness: scenarios, load driver, overhead measurement and reports."""

__all__: list[str] = []
