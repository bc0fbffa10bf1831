"""A contract finding: one way a pact and a spec disagree, located on both sides.

Every finding names the pact file and interaction (what a consumer relies on) and the
spec file and JSON pointer (what the provider promises), so the consumer team and the
provider team each go straight to their own line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RULES", "Finding"]

# rule -> what it means; `contracts check` and `contracts diff` speak the same terms.
RULES = {
    "provider-spec-missing": "no spec of the pact's provider",
    "path-missing": "no path of the spec matches the request: the path was removed or renamed",
    "method-missing": "the path exists but not with this method",
    "parameter-undeclared": "the consumer sends a parameter the spec does not declare",
    "parameter-invalid": "a parameter value the consumer sends breaks its schema",
    "required-parameter-added": "the spec requires a parameter the consumer does not send",
    "security-missing": "the consumer sends no credential the operation's security accepts",
    "request-body-required": "the spec requires a request body the consumer does not send",
    "request-media-type": "the consumer sends a body of a media type the spec does not accept",
    "required-field-added": "the spec requires a request field the consumer does not send",
    "status-undeclared": "the status the consumer expects is not declared for the operation",
    "media-type-undeclared": "the media type the consumer expects is not declared",
    "field-removed": "a field the consumer relies on is not in the schema: removed or renamed",
    "type-changed": "a value the consumer relies on has another type in the schema",
    "enum-value-dropped": "a value the consumer relies on is no longer among the schema's enum",
    "schema-mismatch": "a value the consumer relies on breaks the schema",
    "channel-missing": "no channel of the AsyncAPI carries the message's topic: removed or renamed",
    "not-a-sender": "the AsyncAPI does not list the pact's provider as a sender on the channel",
    "not-a-receiver": "the AsyncAPI does not list the pact's consumer as a receiver on the channel",
    "message-missing": "the channel carries no message of this type",
}


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    pact: str
    interaction: str
    spec: str
    pointer: str
    message: str
    rule: str
    pact_pointer: str = ""

    def __str__(self) -> str:
        return (
            f"{self.pact}#{self.pact_pointer} [{self.interaction}] -> "
            f"{self.spec}#{self.pointer}: {self.message} [{self.rule}]"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
