"""The facade: :class:`AsyncSession`, the chains it builds, and ``cancel_many``."""
