"""Size limits, each said once: the library, the file loader and the dashboard use these.

MLflow keeps a tag value up to 100,000 characters (its tag limit, which holds a template's
text and its metadata as JSON); free text written by people (justifications, comments,
reasons) and error texts kept on rows are cut or refused at 5,000 characters.
"""

MAX_TEMPLATE_LENGTH = 100_000
MAX_METADATA_JSON_LENGTH = 100_000
MAX_TEXT = 5000
