"""One exception hierarchy for the whole project: every error a user can meet says what to do about it."""

from __future__ import annotations


class LeptonError(Exception):
    """Base of every error raised on purpose by lepton-streams; the CLI prints it without a traceback."""


class ConfigurationError(LeptonError):
    """The settings or the environment are wrong (a missing tool, a bad value)."""


class ServiceError(LeptonError):
    """A service of the local stack failed to start, stopped, or is unhealthy."""


class DownloadError(ServiceError):
    """An artifact could not be fetched (Maven, apt)."""


class PortBusyError(ServiceError):
    """A port the local stack needs is taken by another process."""


class SearchError(LeptonError):
    """The search engine refused a request or could not be reached."""


class BatcherError(LeptonError):
    """The dynamic batcher could not score a submission."""


class BatcherClosedError(BatcherError):
    """A submission reached a batcher that is not started, stopping or stopped."""


class BatchResultError(BatcherError):
    """The model returned a different number of results than it got inputs."""


class ModelArtifactError(LeptonError):
    """A trained model artifact is missing, unreadable, or does not match the code that loads it."""


class ProduceError(LeptonError):
    """Events could not be published (broker unreachable, unreadable input file)."""


class SinkBackpressure(LeptonError):
    """A sink is behind: the caller must flush (and so pause consumption) before adding more."""
