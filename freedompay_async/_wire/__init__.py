"""The wire format: the field tree, the md5 signature, salts, multipart bodies, the
XML document, and reading a gateway reply into a verified value or a typed error.

The bottom layer of the client: it knows nothing of transports, retries or operations."""
