"""relay: polls the IntelliSMS MC5 API and delivers each message as a signed webhook."""

__version__ = "0.1.0"
