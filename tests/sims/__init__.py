"""Loopback simulators of the video providers, written from ``shared/providers.md``.

Each simulator is a real aiohttp server on 127.0.0.1 that the real adapter code talks to
over HTTP; the shared machinery (recorder, fault queue, schema checks, CDN) is in
:mod:`tests.sims.base`, and the submit-and-poll life of a task in :mod:`tests.sims.tasks`.
"""
