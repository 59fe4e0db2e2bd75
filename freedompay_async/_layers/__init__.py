"""The middleware layers between a call and the transport: the chain itself, retry,
per-payment spacing, pacing, the in-flight cap and attempt logging."""
