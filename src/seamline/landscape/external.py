"""An integration outside the hub (`landscape/NAME.yaml`), declared so the map is whole.

```yaml
# landscape/erp-to-pim-export.yaml
purpose: Nightly product export from the ERP to the PIM.
source: erp                 # a system in systems/, or a name used only here
target: pim
trigger: nightly cron on server erp-01 (02:00)
owner: unknown              # or an e-mail; unknown is a risk, and says so
criticality: medium         # low | medium | high | critical
sla: by 06:00               # in words; none is a risk
changed: 2019-03-01         # when it last changed, if anyone knows
```
"""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

Criticality = Literal["low", "medium", "high", "critical"]
UNKNOWN_OWNERS = frozenset({"", "unknown", "none", "nobody", "?", "tbd"})


class ExternalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    purpose: str = ""
    source: str
    target: str
    trigger: str
    """How it runs, in words: a cron line and its host, a person's weekly upload."""
    owner: str | None = None
    criticality: Criticality = "medium"
    sla: str | None = None
    changed: datetime.date | None = None

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        return None if value is None or value.strip().lower() in UNKNOWN_OWNERS else value
