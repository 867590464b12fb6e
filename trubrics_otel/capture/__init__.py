"""The app's side: where a call becomes a span or a record (client, tracing, context)."""
