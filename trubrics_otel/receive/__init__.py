"""Telemetry from outside the process: the OTLP receivers shared by the bridge and the local server.

* :mod:`~trubrics_otel.receive.http`: HTTP/1.1 on waitress (sized and chunked bodies, keep-alive,
  ``Expect: 100-continue``, gzip / deflate, size caps, bounded threads, stalled clients cut off);
* :mod:`~trubrics_otel.receive.grpc`: OTLP/gRPC ``TraceService/Export`` on grpcio
  (``pip install 'trubrics-otel[grpc]'``).

Both hand a request to the application's own callable and know nothing of Trubrics.
"""
