"""What a fleet of workers shares about each payment: the seam and its implementations.

``base`` holds the :class:`~freedompay_async.Coordinator` protocol; ``memory`` its
in-process implementation; ``redis_coordinator`` (with the Lua scripts in
``redis_scripts``) the Redis one, for fleets; ``lease`` holding a payment's lease over
any of them (waiting for it, renewing it, checking it).
"""
