"""The results files: their records (``records``, with a format version), the
append-only writer (``writer``), the reader and its latest-result rule (``reader``), the
experiment as the files record it (``recorded``) and ``validate``. Import from the
modules; this package re-exports nothing, so reading a file never loads the writer."""
