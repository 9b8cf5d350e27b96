"""The server lifecycle, one concern a module:

- ``site``: what operators declare (sites, BMCs, credentials by reference, TLS, provisioning specs);
- ``inventory``: what discovery reads from a BMC (system inventories, identities, summaries);
- ``fleet``: firmware, BIOS and image operations per server, with drift (usable in waves);
- ``messages``: what the server workflows and activities exchange (discovery, provisioning, registration);
- ``steps``: the step types ``server.*`` a pipeline may use, registered from one table.

Everything is re-exported here, so ``from definitions.server import X`` keeps working. Pure pydantic and
data only: imported inside the Temporal workflow sandbox.
"""

from __future__ import annotations

from definitions.server.fleet import *  # noqa: F403  (the package's names, re-exported)
from definitions.server.fleet import __all__ as _fleet
from definitions.server.inventory import *  # noqa: F403
from definitions.server.inventory import __all__ as _inventory
from definitions.server.messages import *  # noqa: F403
from definitions.server.messages import __all__ as _messages
from definitions.server.site import *  # noqa: F403
from definitions.server.site import __all__ as _site
from definitions.server.steps import *  # noqa: F403
from definitions.server.steps import __all__ as _steps

__all__ = [*_site, *_inventory, *_messages, *_fleet, *_steps]
