"""An https:// destination that fails its TLS handshake is a retryable failure with the events
pending, never an exception out of the transport (OpenSSL's error carries its ``reason`` as a
string, which the refusal check once walked as if it were an exception)."""

from __future__ import annotations

import socket
import threading
import time

from trubrics_otel.deliver.transport import EVENTS_PATH, Transport


def test_a_tls_handshake_that_fails_is_a_retryable_failure_not_an_exception():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def answer_in_plain_text() -> None:
            while True:  # every attempt (a retry connects again) gets plain text, not a handshake
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    time.sleep(0.2)

        threading.Thread(target=answer_in_plain_text, daemon=True).start()
        transport = Transport(f"https://127.0.0.1:{listener.getsockname()[1]}/api", "k-secret", timeout=2)
        result = transport.send(EVENTS_PATH, [{"event": "a"}, {"event": "b"}],
                                deadline=time.monotonic() + 1.0)
    assert not result.ok and result.retryable and len(result.pending) == 2
    assert "SSL" in (result.detail or "")
    assert "k-secret" not in (result.detail or "")
