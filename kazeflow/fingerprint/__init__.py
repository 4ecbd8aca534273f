"""Fingerprinting: what an asset's cache key is made of, computed without the store.

``_code`` hashes an asset's code and the user code it reaches (``_syntax``, ``_source``,
``_imports``, ``_user`` read it; ``_unseen`` warns about what cannot be followed),
``_files`` the files an asset reads, ``_libraries`` the versions of libraries it imports,
``_hashing`` turns all of it into keys; ``_cache`` and ``_cachefile`` remember analyses
between processes in the store's ``cache/`` folder.
"""
