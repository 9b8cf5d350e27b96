"""The Platform Mesh provider controller: orders placed as Kubernetes objects in kcp run as pipelines."""
