"""Task queue names: one per integration layer, so each layer scales on its own."""

PIPELINE = "pipeline"      # PipelineWorkflow, fan-out children, core activities (http, definitions)
REDFISH = "redfish"        # BMC access (server lifecycle)
OPENSTACK = "openstack"    # CobaltCore / Ironic
IRONCORE = "ironcore"      # IronCore metal API
GARDENER = "gardener"      # Shoot lifecycle
OCM = "ocm"                # component transport, signing
KONFIDENCE = "konfidence"  # ring promotion, gates

ALL = (PIPELINE, REDFISH, OPENSTACK, IRONCORE, GARDENER, OCM, KONFIDENCE)
