"""The operations: request and result values (cancel, status, clearing, refund), the
shared field readers and validators, and each operation's declarative definition."""
