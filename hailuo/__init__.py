"""The core: the rules and the job's life, free of Discord.

``model/`` is the ground floor every layer may import; ``jobs/``, ``money/``,
``moderation/``, ``media/``, ``web/`` and ``i18n/`` are the core's rooms (each
``__init__`` says what it may import). ``settings.py`` reads the environment,
``clock.py`` is injected time, ``cli.py``/``doctor.py`` wire ``python -m hailuo``.
"""
