"""The base of the function definition's pydantic models, and value types their keys share.

``supervisor.config`` builds the definition from these, and so does each storage type of
``supervisor.storage`` for its ``storage_providers`` settings.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr

__all__ = ["Model", "OptionalSecret", "OptionalText", "blank_is_none"]


class Model(BaseModel):
    # Unknown keys are not refused here: ``supervisor.checks`` names them, as errors or as
    # warnings (``parse_config``'s ``strict``).
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


def blank_is_none(value: object) -> object:
    """OSCAR writes every field of a provider, ``""`` for those not set: read it as absent."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


OptionalText = Annotated[str | None, BeforeValidator(blank_is_none)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(blank_is_none)]
