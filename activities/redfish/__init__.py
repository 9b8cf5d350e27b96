"""Redfish integration over `sushy`, one small interface per layer (power, boot, inventory, BIOS,
firmware, virtual media) so another backend (an Ironic node, an IronCore Server) can stand in.

- :mod:`activities.redfish.interfaces`: the per-concern protocols the activities go through.
- :mod:`activities.redfish.client`: connecting to a BMC with sushy's own retries off.
- :mod:`activities.redfish.backend`: the Redfish implementation of each concern (one module each).
- :mod:`activities.redfish.inventory`: the full inventory of one system (unknown parts recorded).
- :mod:`activities.redfish.activities`: the Temporal activities on the `redfish` queue.
"""
