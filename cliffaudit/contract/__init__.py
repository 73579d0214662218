"""The output contract: what a valid output is, at the text and at the token level.

* :func:`strict_validate` -- is a finished output valid (json + JSON Schema)?
  :func:`strict_validate_output` the same for a sampled output's token ids.
* :func:`load_contract_schema` -- a schema compiled into the grammar of its valid
  outputs, with each keyword's status (exact, approximate, ignored) or a refusal.
* :class:`TokenContract` -- per position of a generated output: its class label,
  its valid-token mask (llguidance over that grammar) and the first violation.
"""

from cliffaudit.contract.schema import ContractSchema, ContractSchemaError, KeywordStatus, load_contract_schema
from cliffaudit.contract.strict import StrictVerdict, strict_validate, strict_validate_bytes, strict_validate_output
from cliffaudit.contract.tokens import ContractBatch, SequenceContract, TokenContract, Violation, unpack_mask
from cliffaudit.contract.vocabulary import TokenVocabulary, vocabulary_from_tokenizer

__all__ = [
    "ContractBatch",
    "ContractSchema",
    "ContractSchemaError",
    "KeywordStatus",
    "SequenceContract",
    "StrictVerdict",
    "TokenContract",
    "TokenVocabulary",
    "Violation",
    "load_contract_schema",
    "strict_validate",
    "strict_validate_bytes",
    "strict_validate_output",
    "unpack_mask",
    "vocabulary_from_tokenizer",
]
