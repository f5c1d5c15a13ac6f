"""The ground floor: records and rules every layer shares (job status table, spec data,
settlement, errors, camera grammar, capability records, the provider port, ``Secret`` and
provider settings).

No I/O, no message catalog, no discord. Imports only the standard library and itself;
every other layer (``storage/``, ``providers/``, the rest of ``hailuo/``, ``cogs/``) may import it.
"""
