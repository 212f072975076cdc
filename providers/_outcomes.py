"""The errors that end a whole request, after planning or after its attempts (see the tree in
``providers/_errors.py``): nothing could be tried, every attempt failed, a stream broke after
chunks reached the caller, or the deadline passed (waiting for a limit included)."""

from __future__ import annotations

from collections.abc import Sequence

from ._errors import RouterError, UpstreamError

__all__ = [
    "AllCandidatesFailed",
    "DeadlineExceeded",
    "NoCandidatesError",
    "SaturatedError",
    "StreamInterrupted",
]


class NoCandidatesError(RouterError):
    """Every candidate was excluded before anything was sent.

    Attributes:
        model: the canonical model asked for.
        exclusions: (gateway, gateway model, reason) for each candidate.
    """

    def __init__(self, model: str, exclusions: Sequence[tuple[str, str, str]]) -> None:
        self.model = model
        self.exclusions = tuple(exclusions)
        lines = "; ".join(f"{g}:{m}: {why}" for g, m, why in self.exclusions)
        super().__init__(f"no candidate can serve {model!r}: {lines}")


class AllCandidatesFailed(RouterError):
    """Every attempt failed; nothing complete reached the caller.

    Attributes:
        model: the canonical model asked for.
        attempts: every attempt, in order (``providers.Attempt``).
        errors: the error of each failed attempt, in order; the first is also the
            ``__cause__``, since the first failure is usually the real one.
        reason: why the router stopped (candidates exhausted, retry budget spent...).
    """

    def __init__(
        self, model: str, attempts: Sequence[object], errors: Sequence[UpstreamError], reason: str
    ) -> None:
        self.model = model
        self.attempts = tuple(attempts)
        self.errors = tuple(errors)
        self.reason = reason
        listed = "; ".join(str(e) for e in self.errors)
        super().__init__(f"{model!r}: {len(self.errors)} attempt(s) failed and {reason}: {listed}")


class StreamInterrupted(RouterError):
    """A stream broke after some of it reached the caller; what arrived is not the whole answer.

    Attributes:
        model: the canonical model asked for.
        cause: the upstream failure that broke it (also the ``__cause__``; a later
            failure, in restart mode, never replaces it).
        delivered: the text that had reached the caller.
        attempts: every attempt, in order.
        errors: every failure, in order, the cause first among the interruptions.
    """

    def __init__(
        self,
        model: str,
        cause: UpstreamError,
        delivered: str,
        attempts: Sequence[object] = (),
        errors: Sequence[UpstreamError] = (),
    ) -> None:
        self.model = model
        self.cause = cause
        self.delivered = delivered
        self.attempts = tuple(attempts)
        self.errors = tuple(errors)
        super().__init__(
            f"the stream of {model!r} broke after {len(delivered)} characters had been delivered; "
            f"discard them: {cause}"
        )


class DeadlineExceeded(RouterError, TimeoutError):
    """The request's overall deadline passed before a complete answer arrived.

    Attributes:
        deadline: the deadline, in seconds.
        attempts: the attempts made before it passed.
        errors: their errors.
    """

    def __init__(
        self, deadline: float, attempts: Sequence[object] = (), errors: Sequence[UpstreamError] = ()
    ) -> None:
        self.deadline = deadline
        self.attempts = tuple(attempts)
        self.errors = tuple(errors)
        tail = "; ".join(str(e) for e in self.errors)
        super().__init__(
            f"no complete answer within the {deadline:g}s deadline after {len(self.attempts)} attempt(s)"
            + (f": {tail}" if tail else "")
        )


class SaturatedError(DeadlineExceeded):
    """Every candidate is at one of its account's limits, and the deadline left no time to wait.

    A :class:`DeadlineExceeded`: the request waited for a slot (or a Retry-After)
    until its deadline, or the earliest would free only after it. No attempt was made.

    Attributes:
        model: the canonical model asked for.
        limits: for each deferred candidate, which limit and when it frees, in words.
        frees_in: seconds until the earliest of them frees (None: when a request in
            flight ends, or never for a request larger than a limit).
        deadline: the request's deadline, in seconds (None when not known).
    """

    def __init__(
        self, model: str, limits: Sequence[str], frees_in: float | None, deadline: float | None = None
    ) -> None:
        self.model = model
        self.limits = tuple(limits)
        self.frees_in = frees_in
        self.deadline = deadline  # type: ignore[assignment]
        self.attempts = ()
        self.errors = ()
        when = "" if frees_in is None else f"; the earliest frees in {frees_in:.1f}s"
        RouterError.__init__(
            self, f"every candidate for {model!r} is at a rate limit ({'; '.join(self.limits)}){when}"
        )
