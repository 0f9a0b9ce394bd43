"""Where a run's bytes come from and go to, and in which format.

- :mod:`~modelrouter.storage.formats`: what a path holds (format, compression, delimiter).
- :mod:`~modelrouter.storage.run_paths`: which files a run reads and writes, checked up front.
- :mod:`~modelrouter.storage.object_store`: object-store URIs (``s3://…``) read and written
  (:mod:`~modelrouter.storage.uris`, :mod:`~modelrouter.storage.store_clients`,
  :mod:`~modelrouter.storage.store_reading`, :mod:`~modelrouter.storage.uploads`).
- :mod:`~modelrouter.storage.tables`: database tables as inputs and outputs
  (:mod:`~modelrouter.storage.table_urls`, :mod:`~modelrouter.storage.table_drivers`,
  :mod:`~modelrouter.storage.table_reader`).
- :mod:`~modelrouter.storage.commit`: atomic files and streams, one commit step for a run.
- :mod:`~modelrouter.storage.writers`, :mod:`~modelrouter.storage.csv_writer`,
  :mod:`~modelrouter.storage.cells`: how an output's bytes are made.

No Typer, no rich, and nothing from :mod:`modelrouter.batch`: the engine builds on this layer.
"""
