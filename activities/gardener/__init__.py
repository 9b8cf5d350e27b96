"""Activities of the cluster lifecycle (queue `gardener`): everything that talks to the garden.

Client: `kubernetes_asyncio`. Activities are async, so a watch that waits for a Shoot is cancelled
cleanly when Temporal cancels the activity, heartbeats need no extra thread, and many waits share
one worker without a thread each. Its traps are handled here: every patch names its content type
(without one a dict becomes a JSON patch), every watch passes ``timeoutSeconds`` (so the library
never retries a 410 by itself and we re-list instead), and requests carry a client-side timeout.
"""
