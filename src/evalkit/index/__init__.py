"""The prevention index (主防指数): definition, station × period scores, alerts, explanation.

See ``docs/prevention-index.md``.
"""

from evalkit.index.compute import compute_index, table_name
from evalkit.index.definition import (
           IndexDefinition,
           IndexDefinitionError,
           load_definition,
           validate_definition,
)

__all__ = ["IndexDefinition", "IndexDefinitionError", "compute_index", "load_definition", "table_name",
           "validate_definition"]
