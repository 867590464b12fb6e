"""The line a closing delivery logs about the events it leaves behind: how many, why, where
they wait, and who can send them.

::

    logger.error(closing_report(3, spool_directory, "https://…/publish_events failed (HTTP 503)", None))
    # Closing with 3 Trubrics events undelivered: https://…/publish_events failed (HTTP 503);
    # spooled in /home/me/.cache/trubrics-otel/spool/3f… for the next process using this endpoint.

A spool directory is one host and key's. Events spooled while the configuration refused to
send (a malformed host, plain http:// off loopback, no key) wait where no process will ever
send them from once the setting is corrected (its spool is another directory):
``trubrics-otel doctor``, run with the corrected setting, finds them and prints the command
that moves them into the corrected destination's spool, so the line says that, not "the next
process" (none can send there).
"""

from __future__ import annotations

from pathlib import Path


def closing_report(pending: int, directory: Path | None, failure: str | None, refusal: str | None) -> str:
    """The one line for ``pending`` events left at close: ``failure`` (the last attempt's URL
    and cause), ``refusal`` (why the configuration sends nothing; None when it may)."""
    if directory is None:
        where = "lost (the spool is off)"
    elif refusal:
        where = (f"spooled in {directory}, which no process sends while this setting stands: once it is "
                 "corrected, `trubrics-otel doctor` (run with the corrected setting) prints the command that "
                 "moves them to where they are sent")
    else:
        where = f"spooled in {directory} for the next process using this endpoint"
    why = failure or (f"not sending: {refusal}" if refusal else "the endpoint kept failing")
    return f"Closing with {pending} Trubrics events undelivered: {why}; {where}."
