"""A small Kubernetes-style API server for the landscape (no kube-apiserver can run here).

Generic over registered kinds (:mod:`landscape.kubeapi.kinds`); simulated controllers such as the
gardenlet (:mod:`landscape.gardener`) run beside it in the same event loop.
"""
