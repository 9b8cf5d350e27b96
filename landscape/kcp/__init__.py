"""A local kcp: logical clusters (workspaces), API exports and bindings, and the APIExport virtual workspace.

Written from kcp's documentation (workspaces, "Exporting and binding APIs", REST access patterns),
on top of the landscape's Kubernetes-style API server: every logical cluster is one
`landscape.kubeapi` ApiServer, all sharing one resourceVersion clock as kcp's shards share etcd's.
"""
